package templates

import (
	"strings"
	"testing"

	"github.com/switchboard-sip/switchboard/configs"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		cfg  configs.Config
		want []string
	}{
		{"valid", configs.Config{
			Hotlines: []configs.Hotline{{Name: "a", Greeting: "Good {{daypart .Now}}"}},
			Rules:    []configs.Rule{{Name: "r", When: `"vip" in contact.tags`}},
		}, nil},
		{"both sections at once", configs.Config{
			Hotlines: []configs.Hotline{{Name: "a", Greeting: "{{bad}}"}},
			Rules:    []configs.Rule{{Name: "r", When: `nope`}},
		}, []string{"hotlines[0].greeting: template: line 1", "rules[0].when: line 1, column 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(&tt.cfg)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("Check succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	t.Run("default config", func(t *testing.T) {
		for _, path := range []string{"../configs/default.yaml"} {
			cfg, err := configs.Load(path)
			if err != nil {
				t.Skipf("%s does not load yet: %v", path, err)
			}
			if err := Check(cfg); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
	})
}
