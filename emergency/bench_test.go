package emergency

import "testing"

// BenchmarkIs is the cost the SIP path pays per outbound INVITE.
func BenchmarkIs(b *testing.B) {
	n := NewNumbers("0", []string{"5555"})
	for _, c := range []struct{ name, dialled string }{{"ordinary", "sip:004930123456789@10.0.0.1"}, {"emergency", "112"}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n.Is(c.dialled, "DE")
			}
		})
	}
}
