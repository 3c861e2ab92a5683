package callctl_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard-sip/switchboard/callctl"
	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/contacts"
)

// fakeContacts is an in-memory contact index that creates contacts with
// increasing ids, as the cache does.
type fakeContacts struct {
	byNumber map[string]*contacts.Info
	created  []string // names of created contacts
}

func (f *fakeContacts) Lookup(e164 string) *contacts.Info { return f.byNumber[e164] }

func (f *fakeContacts) FindOrCreate(p contacts.Phone, name string) (*contacts.Info, bool) {
	if in := f.byNumber[p.E164]; in != nil {
		return in, false
	}
	in := &contacts.Info{ID: int64(100 + len(f.byNumber)), Name: name}
	f.byNumber[p.E164] = in
	f.created = append(f.created, name)
	return in, true
}

type messageLog []cdr.Message

func (l *messageLog) SaveMessage(m cdr.Message) { *l = append(*l, m) }

func TestTextRecorder(t *testing.T) {
	known := &contacts.Info{ID: 7, Name: "Jane"}
	cs := &fakeContacts{byNumber: map[string]*contacts.Info{"+4915112345678": known}}
	var log messageLog
	rec := callctl.NewTextRecorder(normalizer(t), cs, &log, 16)
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

	// From the trunk: the caller is the remote party, found by number.
	in := rec.Record(callctl.Text{CallID: "m1", Direction: callctl.Inbound, Trunk: "carrier", Region: "DE", Trusted: true, Node: "sb-1",
		Signalling: callctl.Signalling{
			RequestURI: sipAddr("", "201", "pbx.example"), From: sipAddr("Jane", "015112345678", "carrier.example"),
			To: sipAddr("", "201", "pbx.example")},
		ContentType: "text/plain", Body: []byte("Call me back"), Status: 200, At: at})
	want := cdr.Message{ID: in.ID, CallID: "m1", Direction: cdr.Received, Caller: "+4915112345678", CallerRaw: "015112345678",
		Called: "201", CalledRaw: "201", ContactID: 7, Content: "Call me back", Size: 12, ContentType: "text/plain",
		Trunk: "carrier", Source: "sip:015112345678@carrier.example", Node: "sb-1", Status: 200, At: at}
	if in != want {
		t.Errorf("received:\n got %+v\nwant %+v", in, want)
	}
	// To the trunk: the callee is the remote party; an unknown number gets
	// a contact, as on a first call.
	out := rec.Record(callctl.Text{Direction: callctl.Outbound, Trunk: "carrier", Region: "DE",
		Signalling: callctl.Signalling{
			RequestURI: sipAddr("", "030 1234567", "carrier.example"), From: sipAddr("Reception", "201", "pbx.example"),
			To: sipAddr("", "030 1234567", "carrier.example")},
		ContentType: "text/plain", Body: []byte("Wir rufen zurück, versprochen"), Status: 202, At: at})
	if out.Direction != cdr.Sent || out.Called != "+49301234567" || out.Caller != "201" || out.ContactID != 101 ||
		out.Source != "sip:201@pbx.example" || !out.Truncated || out.Size != len("Wir rufen zurück, versprochen") {
		t.Errorf("sent: %+v", out)
	}
	if len(cs.created) != 1 || cs.created[0] != "" {
		t.Errorf("contacts created: %q, want one without a name (the callee's To has none)", cs.created)
	}
	// An anonymous sender gets no contact and shows no number.
	anon := rec.Record(callctl.Text{Direction: callctl.Inbound, Region: "DE",
		Signalling: callctl.Signalling{RequestURI: sipAddr("", "201", "pbx.example"),
			From: sipAddr("Anonymous", "anonymous", "anonymous.invalid")}, Body: []byte("hi"), Status: 200, At: at})
	if anon.ContactID != 0 || anon.Caller != "" {
		t.Errorf("anonymous: %+v", anon)
	}
	if len(log) != 3 || log[0] != in {
		t.Errorf("log holds %d records", len(log))
	}
}

// MessageText keeps at most max bytes of text, cut at a character
// boundary and marked; control characters go, binary bodies keep no text.
func TestMessageText(t *testing.T) {
	tests := []struct {
		name, body, ctype string
		max               int
		want              string
		cut               bool
	}{
		{"fits", "hello", "text/plain", 5, "hello", false},
		{"cut", "hello world", "text/plain", 5, "hello", true},
		{"cut before a multi-byte character", "abcd€", "text/plain", 6, "abcd", true},
		{"multi-byte fits", "abcd€", "text/plain", 7, "abcd€", false},
		{"controls go, newline and tab stay", "a\x00b\r\nc\td\x1b[31m", "text/plain", 100, "ab\nc\td[31m", false},
		{"invalid UTF-8 in text is replaced", "a\xffb", "text/plain; charset=utf-8", 100, "a\uFFFDb", false},
		{"binary keeps no text", "\x89PNG\r\n\x1a\n\xff", "image/png", 100, "", false},
		{"valid UTF-8 of another type is text", `{"text":"hi"}`, "application/json", 100, `{"text":"hi"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := callctl.MessageText([]byte(tt.body), tt.ctype, tt.max)
			if got != tt.want || cut != tt.cut {
				t.Errorf("MessageText = %q, %v; want %q, %v", got, cut, tt.want, tt.cut)
			}
			if len(got) > tt.max || !utf8.ValidString(got) {
				t.Errorf("%q: longer than %d or not UTF-8", got, tt.max)
			}
		})
	}
	long := strings.Repeat("x", 10000)
	if got, cut := callctl.MessageText([]byte(long), "text/plain", 4096); len(got) != 4096 || !cut {
		t.Errorf("10000 bytes at 4 KiB: %d kept, cut %v", len(got), cut)
	}
}
