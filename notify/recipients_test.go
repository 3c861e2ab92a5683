package notify

import (
	"reflect"
	"testing"

	"github.com/switchboard-sip/switchboard/configs"
)

func TestRecipients(t *testing.T) {
	m := &configs.Missed{
		Email:   configs.Email{SMTP: "smtp://127.0.0.1:25", To: []string{"desk@x.example"}},
		SMS:     configs.SMS{URL: "http://127.0.0.1/sms", To: []string{"+4915100000001"}},
		Webhook: configs.Webhook{URL: "http://127.0.0.1/hook"},
	}
	hot := &configs.Hotline{Recipients: []string{"acme@x.example", "+4915100000002"}}
	tests := []struct {
		name  string
		h     *configs.Hotline
		extra []string
		want  map[string][]string
	}{
		{"global", nil, nil, map[string][]string{
			ChannelEmail: {"desk@x.example"}, ChannelSMS: {"+4915100000001"}, ChannelWebhook: {"http://127.0.0.1/hook"}}},
		{"hotline", hot, nil, map[string][]string{
			ChannelEmail: {"acme@x.example"}, ChannelSMS: {"+4915100000002"}, ChannelWebhook: {"http://127.0.0.1/hook"}}},
		{"rule adds", hot, []string{"boss@x.example", "acme@x.example", "+4915100000003"}, map[string][]string{
			ChannelEmail:   {"acme@x.example", "boss@x.example"},
			ChannelSMS:     {"+4915100000002", "+4915100000003"},
			ChannelWebhook: {"http://127.0.0.1/hook"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := recipients(m, tc.h, tc.extra); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
