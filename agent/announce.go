package agent

import (
	"context"
	"fmt"
	"net/netip"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/media"
	"github.com/switchboard-sip/switchboard/sip"
)

// announcementPaths lists every WAV file the config names, with its key.
func announcementPaths(cfg *configs.Config) map[string]string {
	out := map[string]string{}
	add := func(key, path string) {
		if path != "" {
			if _, seen := out[path]; !seen {
				out[path] = key
			}
		}
	}
	add("blocking.announcement", cfg.Blocking.Announcement)
	for i, h := range cfg.Hotlines {
		add(fmt.Sprintf("hotlines[%d].closed.announcement", i), h.Closed.Announcement)
	}
	for i, r := range cfg.Rules {
		if r.Then.Reject != nil {
			add(fmt.Sprintf("rules[%d].then.reject.announcement", i), r.Then.Reject.Announcement)
		}
	}
	return out
}

// loadAnnouncements reads and converts every announcement when the config
// loads, so that a missing or unplayable file is a config error naming its
// key, never a surprise during a call.
func loadAnnouncements(cfg *configs.Config) (map[string]*media.Audio, error) {
	audios := map[string]*media.Audio{}
	for path, key := range announcementPaths(cfg) {
		a, err := media.LoadWAV(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		audios[path] = a
	}
	return audios, nil
}

// newAnnouncer builds the RTP side of announcements on the address the
// callers reach us at. It is nil (announcements off, rejects go on without
// them) when that address is no IP, such as a wildcard listener with no
// sip.advertise.
func newAnnouncer(cfg *configs.Config, log *zap.Logger) (*media.Announcer, error) {
	ip := mediaIP(cfg)
	if !ip.IsValid() {
		log.Warn("announcements off: set sip.advertise to the IP callers reach switchboard at")
		return nil, nil
	}
	pool, err := media.NewPortPool(cfg.Media.RTPLow, cfg.Media.RTPHigh, ip.String())
	if err != nil {
		return nil, fmt.Errorf("media.rtp_ports: %w", err)
	}
	return media.NewAnnouncer(pool, log.Named("announce")), nil
}

func mediaIP(cfg *configs.Config) netip.Addr {
	candidates := []string{cfg.SIP.Advertise}
	for _, l := range cfg.SIP.Listeners {
		candidates = append(candidates, l.Host)
	}
	for _, c := range candidates {
		if ip, err := netip.ParseAddr(c); err == nil && !ip.IsUnspecified() {
			return ip
		}
	}
	return netip.Addr{}
}

// announceFunc plays the preloaded announcements through the announcer.
func announceFunc(an *media.Announcer, audios map[string]*media.Audio) sip.AnnounceFunc {
	if an == nil {
		return nil
	}
	return func(ctx context.Context, wav string, offer []byte) ([]byte, <-chan struct{}, error) {
		audio := audios[wav]
		if audio == nil {
			return nil, nil, fmt.Errorf("announcement %s was not loaded", wav)
		}
		o, err := media.ParseOffer(offer)
		if err != nil {
			return nil, nil, err
		}
		pb, err := an.Start(ctx, o, audio)
		if err != nil {
			return nil, nil, err
		}
		return pb.AnswerSDP, pb.Done(), nil
	}
}
