// Package simsip is a simulated PBX and a simulated carrier trunk, written
// with sipgo, that speak SIP to switchboard over loopback like real ones:
// `switchboard demo` shows calls with them, and the end-to-end tests place
// calls with them where a scripted SIPp scenario would not fit.
package simsip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	gosip "github.com/emiago/sipgo/sip"
)

// Outcome is what the simulated PBX and caller do with one call.
type Outcome int

// Outcomes of a simulated call.
const (
	Answer  Outcome = iota // rings, answered, talk, the PBX hangs up
	Missed                 // rings until the caller gives up
	Busy                   // the PBX answers 486
	Blocked                // switchboard refuses the caller (the PBX never sees it)
)

func (o Outcome) String() string {
	return [...]string{"answered", "missed", "busy", "blocked"}[o]
}

// Plan is what happens to one call: its outcome, how long it rings and,
// when answered, how long it lasts.
type Plan struct {
	Outcome    Outcome
	Ring, Talk time.Duration
}

// quiet discards sipgo's chatter.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// SDP is a minimal audio offer or answer on port: the simulation carries
// no media.
func SDP(port int) []byte {
	return []byte("v=0\r\no=sim 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio " +
		strconv.Itoa(port) + " RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n")
}

// listenUDP serves srv on a loopback port until ctx ends.
func listenUDP(ctx context.Context, srv *sipgo.Server, port int) error {
	conn, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	go srv.ServeUDP(conn)
	return nil
}

// newEndpoint is a sipgo user agent with a server and a client on port.
func newEndpoint(name string, port int) (*sipgo.UserAgent, *sipgo.Server, *sipgo.Client, error) {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		return nil, nil, nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err == nil {
		var cli *sipgo.Client
		cli, err = sipgo.NewClient(ua, sipgo.WithClientLogger(quiet), sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(port))
		if err == nil {
			return ua, srv, cli, nil
		}
	}
	ua.Close()
	return nil, nil, nil, err
}

// FreeUDPPorts finds n loopback ports free for UDP.
func FreeUDPPorts(n int) ([]int, error) {
	var conns []net.PacketConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var ports []int
	for range n {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
		ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
	}
	return ports, nil
}

// PBX is the simulated PBX: it rings and then answers, stays busy or rings
// until the caller gives up, as each call's plan says.
type PBX struct {
	ua     *sipgo.UserAgent
	cancel context.CancelFunc
	plan   func(callID string) Plan
	speed  float64
}

// StartPBX serves the PBX on UDP port of 127.0.0.1. plan tells what to do
// with a call by its Call-ID; speed divides the ring and talk times.
func StartPBX(port int, speed float64, plan func(callID string) Plan) (*PBX, error) {
	ua, srv, cli, err := newEndpoint("sim-pbx", port)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &PBX{ua: ua, cancel: cancel, plan: plan, speed: speed}
	dialogs := sipgo.NewDialogServerCache(cli, gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: "pbx", Host: "127.0.0.1", Port: port}})
	srv.OnInvite(func(req *gosip.Request, tx gosip.ServerTransaction) {
		ds, err := dialogs.ReadInvite(req, tx)
		if err != nil {
			tx.Respond(gosip.NewResponseFromRequest(req, gosip.StatusBadRequest, "Bad Request", nil))
			return
		}
		// The transaction ends when the handler returns: answer in it.
		p.answer(ctx, ds, tx, p.plan(req.CallID().Value()))
	})
	srv.OnAck(func(req *gosip.Request, tx gosip.ServerTransaction) { dialogs.ReadAck(req, tx) })
	srv.OnBye(func(req *gosip.Request, tx gosip.ServerTransaction) { dialogs.ReadBye(req, tx) })
	srv.OnRequest(gosip.MESSAGE, answerMessage)
	if err := listenUDP(ctx, srv, port); err != nil {
		cancel()
		ua.Close()
		return nil, err
	}
	return p, nil
}

// Close stops the PBX.
func (p *PBX) Close() {
	p.cancel()
	p.ua.Close()
}

func (p *PBX) scaled(t time.Duration) time.Duration { return time.Duration(float64(t) / p.speed) }

func (p *PBX) answer(ctx context.Context, ds *sipgo.DialogServerSession, tx gosip.ServerTransaction, plan Plan) {
	defer ds.Close()
	ds.Respond(gosip.StatusRinging, "Ringing", nil)
	switch plan.Outcome {
	case Busy:
		if wait(ctx, tx.Done(), p.scaled(plan.Ring)) {
			ds.Respond(gosip.StatusBusyHere, "Busy Here", nil)
		}
		return
	case Missed:
		// Nobody picks up: the caller cancels, and the transaction
		// answers the INVITE 487 on its own.
		select {
		case <-tx.Done():
		case <-ctx.Done():
		}
		return
	}
	if !wait(ctx, tx.Done(), p.scaled(plan.Ring)) {
		return
	}
	if err := ds.RespondSDP(SDP(4000)); err != nil {
		return
	}
	if !wait(ctx, ds.Context().Done(), p.scaled(plan.Talk)) {
		return // the caller hung up first
	}
	bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ds.Bye(bctx)
}

// wait waits d unless done or ctx ends first; it reports whether d passed.
func wait(ctx context.Context, done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	case <-ctx.Done():
		return false
	}
}

// Trunk is the simulated carrier: it places calls into switchboard.
type Trunk struct {
	ua      *sipgo.UserAgent
	dialogs *sipgo.DialogClientCache
	cancel  context.CancelFunc
	speed   float64
	seq     sync.Mutex
	n       int
}

// StartTrunk listens on UDP port of 127.0.0.1 (for the BYEs of answered
// calls); speed divides ring times.
func StartTrunk(port int, speed float64) (*Trunk, error) {
	ua, srv, cli, err := newEndpoint("sim-trunk", port)
	if err != nil {
		return nil, err
	}
	t := &Trunk{ua: ua, speed: speed, dialogs: sipgo.NewDialogClientCache(cli,
		gosip.ContactHeader{Address: gosip.Uri{Scheme: "sip", User: "trunk", Host: "127.0.0.1", Port: port}})}
	srv.OnBye(func(req *gosip.Request, tx gosip.ServerTransaction) { t.dialogs.ReadBye(req, tx) })
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	if err := listenUDP(ctx, srv, port); err != nil {
		cancel()
		ua.Close()
		return nil, err
	}
	return t, nil
}

// Close stops the trunk.
func (t *Trunk) Close() {
	t.cancel()
	t.ua.Close()
}

// NewCallID is a Call-ID for the next call, to give the PBX its plan
// before the call is placed.
func (t *Trunk) NewCallID() string {
	t.seq.Lock()
	defer t.seq.Unlock()
	t.n++
	return fmt.Sprintf("sim-%d-%d@127.0.0.1", time.Now().UnixNano(), t.n)
}

// Call is one call the trunk places.
type Call struct {
	CallID   string // from NewCallID
	From     string // caller's number
	Name     string // caller's display name, optional
	To       string // number dialled
	Target   string // switchboard's address, host:port
	Plan     Plan   // Missed: the caller gives up after Plan.Ring
	Identity bool   // send P-Asserted-Identity with the caller's number
}

// Result is how a call went as the caller saw it.
type Result struct {
	// Outcome is answered, missed, busy, rejected, blocked, stopped or
	// failed.
	Outcome string
	Status  int           // the final response's status; 0 when none
	Talked  time.Duration // answered calls
	Err     error         // failed calls
}

// Place makes the call and waits for its end: a caller hanging up when ctx
// ends, the PBX's BYE, the caller's CANCEL after the ring of a missed call.
func (t *Trunk) Place(ctx context.Context, c Call) Result {
	from := &gosip.FromHeader{DisplayName: c.Name, Address: gosip.Uri{Scheme: "sip", User: c.From, Host: "127.0.0.1"}, Params: gosip.NewParams()}
	from.Params.Add("tag", gosip.GenerateTagN(16))
	to := &gosip.ToHeader{Address: gosip.Uri{Scheme: "sip", User: c.To, Host: "127.0.0.1"}, Params: gosip.NewParams()}
	host, portText, err := net.SplitHostPort(c.Target)
	if err != nil {
		return Result{Outcome: "failed", Err: err}
	}
	port, _ := strconv.Atoi(portText)
	hdrs := []gosip.Header{from, to}
	callID := gosip.CallIDHeader(c.CallID)
	hdrs = append(hdrs, &callID)
	if c.Identity {
		pai := "<sip:" + c.From + "@127.0.0.1>"
		if c.Name != "" {
			pai = `"` + c.Name + `" ` + pai
		}
		hdrs = append(hdrs, gosip.NewHeader("P-Asserted-Identity", pai))
	}
	ctype := gosip.ContentTypeHeader("application/sdp")
	hdrs = append(hdrs, &ctype)
	recipient := gosip.Uri{Scheme: "sip", User: c.To, Host: host, Port: port}
	sess, err := t.dialogs.Invite(ctx, recipient, SDP(5000), hdrs...)
	if err != nil {
		return Result{Outcome: "failed", Err: err}
	}
	defer sess.Close()
	started := time.Now()
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.Plan.Outcome == Missed {
		stop := time.AfterFunc(time.Duration(float64(c.Plan.Ring)/t.speed), cancel)
		defer stop.Stop()
	}
	err = sess.WaitAnswer(waitCtx, sipgo.AnswerOptions{})
	var resp *sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &resp):
		code := resp.Res.StatusCode
		switch {
		case code == gosip.StatusBusyHere || code == gosip.StatusGlobalBusyEverywhere:
			return Result{Outcome: "busy", Status: code}
		case c.Plan.Outcome == Blocked:
			return Result{Outcome: "blocked", Status: code}
		}
		return Result{Outcome: "rejected", Status: code}
	case ctx.Err() != nil:
		return Result{Outcome: "stopped"}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || waitCtx.Err() != nil:
		return Result{Outcome: "missed", Err: fmt.Errorf("rang %s", time.Since(started).Round(time.Second))}
	case err != nil:
		return Result{Outcome: "failed", Err: err}
	}
	if err := sess.Ack(ctx); err != nil {
		return Result{Outcome: "failed", Status: gosip.StatusOK, Err: fmt.Errorf("ACK: %w", err)}
	}
	answered := time.Now()
	// The PBX hangs up after the talk time; a stopping caller hangs up first.
	select {
	case <-sess.Context().Done():
	case <-ctx.Done():
		bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		sess.Bye(bctx)
		cancel()
	}
	return Result{Outcome: "answered", Status: gosip.StatusOK, Talked: time.Since(answered)}
}
