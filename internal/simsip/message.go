package simsip

import (
	"context"
	"net"
	"strconv"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
)

// answerMessage is the simulated PBX taking a text message (RFC 3428):
// every MESSAGE is delivered, 200 OK.
func answerMessage(req *gosip.Request, tx gosip.ServerTransaction) {
	tx.Respond(gosip.NewResponseFromRequest(req, gosip.StatusOK, "OK", nil))
}

// Text is one text message the trunk sends.
type Text struct {
	From   string // sender's number
	To     string // number texted
	Body   string
	Target string // switchboard's address, host:port
}

// Text sends one MESSAGE (RFC 3428) through switchboard and returns the
// final response's status.
func (t *Trunk) Text(ctx context.Context, m Text) (int, error) {
	host, portText, err := net.SplitHostPort(m.Target)
	if err != nil {
		return 0, err
	}
	port, _ := strconv.Atoi(portText)
	cli, err := sipgo.NewClient(t.ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		return 0, err
	}
	req := gosip.NewRequest(gosip.MESSAGE, gosip.Uri{Scheme: "sip", User: m.To, Host: host, Port: port})
	from := &gosip.FromHeader{Address: gosip.Uri{Scheme: "sip", User: m.From, Host: "127.0.0.1"}, Params: gosip.NewParams()}
	from.Params.Add("tag", gosip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&gosip.ToHeader{Address: gosip.Uri{Scheme: "sip", User: m.To, Host: "127.0.0.1"}, Params: gosip.NewParams()})
	ctype := gosip.ContentTypeHeader("text/plain;charset=UTF-8")
	req.AppendHeader(&ctype)
	req.SetBody([]byte(m.Body))
	res, err := cli.Do(ctx, req)
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}
