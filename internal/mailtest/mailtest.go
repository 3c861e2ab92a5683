// Package mailtest is a real SMTP server (emersion/go-smtp) on loopback for
// tests, and a reader of the messages it receives.
package mailtest

import (
	"bytes"
	"encoding/base64"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Serve answers SMTP on addr ("127.0.0.1:0" for any port) until the test
// ends, handing every message to out. It returns the address it listens on.
func Serve(t testing.TB, addr string, out chan<- Message) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{out: out}, nil
	}))
	srv.Domain = "localhost"
	// A client closing right after QUIT is not news in a test log.
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.AllowInsecureAuth = true
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

type session struct {
	out chan<- Message
	m   Message
}

func (s *session) Reset()        { s.m = Message{} }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.m.From = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.To = append(s.m.To, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.Data = b
	s.out <- s.m
	return nil
}

// Part is one leaf of a MIME message, decoded.
type Part struct {
	ContentType string
	Filename    string
	Body        string
}

// Parse reads a message and its leaf parts (quoted-printable is decoded by
// mime/multipart, base64 here).
func Parse(t testing.TB, data []byte) (*mail.Message, []Part) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("email does not parse: %v\n%s", err, data)
	}
	var parts []Part
	var walk func(h map[string][]string, body io.Reader)
	walk = func(h map[string][]string, body io.Reader) {
		get := func(k string) string {
			if v := h[k]; len(v) > 0 {
				return v[0]
			}
			return ""
		}
		mt, params, err := mime.ParseMediaType(get("Content-Type"))
		if err != nil {
			t.Fatalf("content type %q: %v", get("Content-Type"), err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p.Header, p)
			}
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if strings.EqualFold(get("Content-Transfer-Encoding"), "base64") {
			if b, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), "")); err != nil {
				t.Fatal(err)
			}
		}
		_, dp, _ := mime.ParseMediaType(get("Content-Disposition"))
		parts = append(parts, Part{ContentType: mt, Filename: dp["filename"], Body: string(b)})
	}
	walk(m.Header, m.Body)
	return m, parts
}

// Find is the first part of a content type, nil when none.
func Find(parts []Part, contentType string) *Part {
	for i := range parts {
		if parts[i].ContentType == contentType {
			return &parts[i]
		}
	}
	return nil
}
