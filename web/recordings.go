package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/template"
	"time"

	"go.uber.org/zap"

	"github.com/switchboard-sip/switchboard/cdr"
	"github.com/switchboard-sip/switchboard/configs"
	"github.com/switchboard-sip/switchboard/storage"
	"github.com/switchboard-sip/switchboard/wire"
)

// RecordingStore is what DELETE /api/calls/{id}/recording needs from the
// call store; *callstore.Store implements it.
type RecordingStore interface {
	Get(ctx context.Context, id string) (cdr.Record, error)
	ClearRecording(ctx context.Context, id string) (cdr.Record, error)
}

// RecordingOptions configure the deletion of recordings.
type RecordingOptions struct {
	Store RecordingStore
	// Config gives the recordings settings in force (asked per request,
	// so that a reload reaches it).
	Config func() configs.Recordings
	// Client sends the DELETE to the PBX; http.DefaultClient with a
	// 10-second timeout when nil.
	Client *http.Client
	// Publish sends call.updated to the board's event stream; nil sends
	// nothing.
	Publish func(typ string, data any)
	Log     *zap.Logger
}

// RecordingDeleted is the answer of DELETE /api/calls/{id}/recording.
type RecordingDeleted struct {
	Call wire.Call `json:"call"`
	// AtPBX says whether the PBX's recording store was asked, and
	// PBXStatus what it answered (its HTTP status).
	AtPBX     bool   `json:"at_pbx"`
	PBXStatus int    `json:"pbx_status,omitempty"`
	Message   string `json:"message"`
}

// RegisterRecordings adds DELETE /api/calls/{id}/recording (SPEC §2, §8):
// it asks the PBX to delete the recording when recordings.delete_url is
// set (an HTTP DELETE to the template's URL with "Authorization: Bearer
// <recordings.delete_token>"; 2xx or 404 counts as deleted), then clears
// the reference. When the PBX refuses or cannot be reached, the reference
// stays, so that Delete can be tried again; the answer is 502 with what
// the PBX said. Every outcome is logged.
func RegisterRecordings(s *Server, o RecordingOptions) {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	s.HandleFunc("DELETE /api/calls/{id}/recording", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		rec, err := o.Store.Get(r.Context(), id)
		if errors.Is(err, storage.ErrNotFound) {
			WriteError(w, http.StatusNotFound, fmt.Sprintf("call %q not found", id))
			return
		}
		if err != nil {
			s.internal(w, r, err)
			return
		}
		if rec.Recording == "" {
			WriteError(w, http.StatusNotFound, fmt.Sprintf("call %q has no recording", id))
			return
		}
		out := RecordingDeleted{Message: "reference cleared"}
		if cfg := o.config(); cfg.DeleteURL != "" {
			out.AtPBX = true
			status, err := o.deleteAtPBX(r.Context(), cfg, rec.Recording)
			out.PBXStatus = status
			log := o.Log.With(zap.String("call", id), zap.String("recording", rec.Recording), zap.Int("status", status))
			if err != nil {
				log.Warn("recording not deleted at the PBX; the reference is kept", zap.Error(err))
				WriteError(w, http.StatusBadGateway, fmt.Sprintf("the PBX did not delete recording %q: %v", rec.Recording, err))
				return
			}
			log.Info("recording deleted at the PBX")
			out.Message = fmt.Sprintf("deleted at the PBX (HTTP %d) and reference cleared", status)
		}
		rec, err = o.Store.ClearRecording(r.Context(), id)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		o.Log.Info("recording reference cleared", zap.String("call", id))
		out.Call = wire.NewCall(rec, s.loc)
		if o.Publish != nil {
			o.Publish(EventCallUpdated, CallEvent{Call: out.Call})
		}
		WriteJSON(w, http.StatusOK, out)
	})
}

func (o RecordingOptions) config() configs.Recordings {
	if o.Config == nil {
		return configs.Recordings{}
	}
	return o.Config()
}

// deleteAtPBX sends the DELETE for ref and returns the PBX's status.
func (o RecordingOptions) deleteAtPBX(ctx context.Context, cfg configs.Recordings, ref string) (int, error) {
	target, err := RecordingDeleteURL(cfg.DeleteURL, ref)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, target, nil)
	if err != nil {
		return 0, err
	}
	if cfg.DeleteToken != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.DeleteToken)
	}
	resp, err := o.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotFound {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, fmt.Errorf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
}

// RecordingDeleteURL fills recordings.delete_url (a text/template over
// .Recording) for a reference; the result must be an http(s) URL.
func RecordingDeleteURL(tmpl, ref string) (string, error) {
	t, err := template.New("delete_url").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("recordings.delete_url: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, struct{ Recording string }{ref}); err != nil {
		return "", fmt.Errorf("recordings.delete_url: %w", err)
	}
	u, err := url.Parse(b.String())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("recordings.delete_url gives %q for recording %q, not an http(s) URL", b.String(), ref)
	}
	return u.String(), nil
}
