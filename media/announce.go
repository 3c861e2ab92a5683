// Package media is switchboard's own media: announcements played as early
// media (SPEC §1): the caller's SDP offer read and answered (PCMU or PCMA),
// WAV files decoded and encoded, RTP streamed from a pool of ports. It
// never touches the media of forwarded calls.
package media

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtp"
	"go.uber.org/zap"
)

// Announcer plays announcements as early media: it answers the caller's SDP offer and streams
// a pre-encoded Audio as RTP. One Announcer serves all calls; each Start is independent.
type Announcer struct {
	pool *PortPool
	log  *zap.Logger
}

// NewAnnouncer returns an Announcer that takes RTP sockets from pool. A nil log discards logs.
func NewAnnouncer(pool *PortPool, log *zap.Logger) *Announcer {
	if log == nil {
		log = zap.NewNop()
	}
	return &Announcer{pool: pool, log: log}
}

// Playback is one announcement being played to one caller.
type Playback struct {
	// AnswerSDP is the body of the 183 Session Progress that starts the early media.
	AnswerSDP []byte
	// Codec and PT are what is sent; Remote is where; LocalPort is the RTP port of the answer.
	Codec     AudioCodec
	PT        uint8
	Remote    netip.AddrPort
	LocalPort int

	done chan struct{}
	err  error
}

// Done is closed when the audio has played to its end, ctx was cancelled (e.g. the caller sent
// CANCEL), or sending failed. The RTP port is released before Done closes.
func (p *Playback) Done() <-chan struct{} { return p.done }

// Err says why the playback ended once Done is closed: nil when it played to the end, the
// context's error when cancelled, or the send error.
func (p *Playback) Err() error {
	<-p.done
	return p.err
}

// Start answers offer and begins streaming audio to the caller in the background. It fails,
// and the call should then be rejected without announcement, when the offer has no usable
// PCMU/PCMA audio stream (errors wrapping ErrNoCommonCodec or ErrNoUsableAudio), the stream's
// address family differs from the pool's, or no RTP port is free.
func (a *Announcer) Start(ctx context.Context, offer Offer, audio *Audio) (*Playback, error) {
	if a == nil || a.pool == nil {
		return nil, errors.New("announce: no RTP port pool configured")
	}
	if audio == nil || audio.Frames() == 0 {
		return nil, errors.New("announce: no audio")
	}
	choice, err := offer.ChooseAudio()
	if err != nil {
		return nil, fmt.Errorf("announce: %w", err)
	}
	if choice.Remote.Addr().Is4() != a.pool.IP().Is4() {
		return nil, fmt.Errorf("announce: caller media %s and local media address %s differ in IP version: %w",
			choice.Remote.Addr(), a.pool.IP(), ErrNoUsableAudio)
	}
	conn, err := a.pool.Acquire()
	if err != nil {
		return nil, fmt.Errorf("announce: %w", err)
	}
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	answer, err := offer.Answer(choice, a.pool.IP(), int(local.Port()))
	if err != nil {
		a.pool.Release(conn)
		return nil, fmt.Errorf("announce: %w", err)
	}
	p := &Playback{
		AnswerSDP: answer,
		Codec:     choice.Codec,
		PT:        choice.PT,
		Remote:    choice.Remote,
		LocalPort: int(local.Port()),
		done:      make(chan struct{}),
	}
	a.log.Debug("announcement started",
		zap.String("file", audio.Path), zap.Stringer("codec", choice.Codec), zap.Uint8("pt", choice.PT),
		zap.Stringer("remote", choice.Remote), zap.Int("local_port", p.LocalPort), zap.Duration("length", audio.Duration()))
	go a.stream(ctx, conn, p, audio)
	return p, nil
}

// stream sends one RTP packet per 20 ms frame. Send times are computed from the start time
// (start + i·20 ms), not by sleeping 20 ms after each send, so the stream does not drift
// behind the timestamps; after a stall it catches up by sending the late packets at once,
// which the caller's jitter buffer absorbs.
func (a *Announcer) stream(ctx context.Context, conn *net.UDPConn, p *Playback, audio *Audio) {
	defer close(p.done)
	defer a.pool.Release(conn)

	// RFC 3550 §5.1: sequence number and timestamp start at random values; §8.1: the SSRC is
	// chosen at random.
	var r [10]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand)
	pkt := rtp.Packet{Header: rtp.Header{
		Version:        2,
		PayloadType:    p.PT,
		SequenceNumber: binary.BigEndian.Uint16(r[0:2]),
		Timestamp:      binary.BigEndian.Uint32(r[2:6]),
		SSRC:           binary.BigEndian.Uint32(r[6:10]),
	}}
	buf := make([]byte, pkt.Header.MarshalSize()+announceFrame)
	remote := p.Remote

	timer := time.NewTimer(0)
	defer timer.Stop()
	start := time.Now()
	frames := audio.Frames()
	sent := 0
	for i := 0; i <= frames; i++ {
		// Wait for this frame's slot; slot `frames` is the end of the last packet's audio, so
		// Done does not close (and the final response is not sent) while it is still playing.
		if wait := time.Until(start.Add(time.Duration(i) * announcePtime)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				p.err = ctx.Err()
				a.log.Debug("announcement cancelled", zap.Stringer("remote", remote), zap.Int("packets", sent))
				return
			case <-timer.C:
			}
		} else if err := ctx.Err(); err != nil {
			p.err = err
			a.log.Debug("announcement cancelled", zap.Stringer("remote", remote), zap.Int("packets", sent))
			return
		}
		if i == frames {
			break
		}
		// RFC 3551 §4.1: the marker bit is set on the first packet of a talkspurt; the whole
		// announcement is one talkspurt.
		pkt.Marker = i == 0
		pkt.Payload = audio.Frame(p.Codec, i)
		n, err := pkt.MarshalTo(buf)
		if err == nil {
			_, err = conn.WriteToUDPAddrPort(buf[:n], remote)
		}
		if err != nil {
			p.err = fmt.Errorf("announce: send RTP to %s: %w", remote, err)
			a.log.Warn("announcement stopped", zap.Stringer("remote", remote), zap.Int("packets", sent), zap.Error(err))
			return
		}
		sent++
		// Timestamps advance by the samples per packet (RFC 3550 §5.1), sequence numbers by one.
		pkt.SequenceNumber++
		pkt.Timestamp += announceFrame
	}
	a.log.Debug("announcement finished", zap.Stringer("remote", remote), zap.Int("packets", sent))
}
