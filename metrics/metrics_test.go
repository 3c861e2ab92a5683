package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerExposesEveryMetric(t *testing.T) {
	m := New()
	m.Calls.WithLabelValues("inbound", "answered", "acme").Inc()
	m.InviteLatency.Observe(0.0007)
	m.ActiveCalls.Set(3)
	m.Blocked.WithLabelValues("inbound").Inc()
	m.Notifications.WithLabelValues("email", "sent").Inc()
	m.OutboxDepth.Set(2)
	m.SIPRequests.WithLabelValues("INVITE", StatusClass(180)).Inc()

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	for _, want := range []string{
		`switchboard_calls_total{direction="inbound",disposition="answered",hotline="acme"} 1`,
		`switchboard_invite_handling_seconds_bucket{le="5e-05"} 0`,
		`switchboard_invite_handling_seconds_bucket{le="0.0008"} 1`,
		`switchboard_invite_handling_seconds_count 1`,
		`switchboard_active_calls 3`,
		`switchboard_blocked_calls_total{direction="inbound"} 1`,
		`switchboard_notifications_total{channel="email",status="sent"} 1`,
		`switchboard_outbox_depth 2`,
		`switchboard_sip_requests_total{class="1xx",method="INVITE"} 1`,
		`go_goroutines`,
	} {
		t.Run(want, func(t *testing.T) {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		})
	}
}

func TestNewIsIndependent(t *testing.T) {
	// Two agents in one process (tests, the demo) must not share counters.
	a, b := New(), New()
	a.ActiveCalls.Set(1)
	rec := httptest.NewRecorder()
	b.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "switchboard_active_calls 0") {
		t.Error("second Metrics sees the first one's gauge")
	}
}

func TestStatusClass(t *testing.T) {
	tests := []struct {
		code int
		want string
	}{{100, "1xx"}, {183, "1xx"}, {200, "2xx"}, {487, "4xx"}, {603, "6xx"}, {0, "none"}, {700, "none"}, {-1, "none"}}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := StatusClass(tt.code); got != tt.want {
				t.Errorf("StatusClass(%d) = %q, want %q", tt.code, got, tt.want)
			}
		})
	}
}

func TestLocalQueue(t *testing.T) {
	m := New()
	if err := m.LocalQueue("records", func() int { return 3 }, func() uint64 { return 2 }); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`switchboard_local_queue_depth{queue="records"} 3`,
		`switchboard_local_queue_dropped_total{queue="records"} 2`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if err := m.LocalQueue("records", func() int { return 0 }, func() uint64 { return 0 }); err == nil {
		t.Error("a queue registered twice")
	}
}
