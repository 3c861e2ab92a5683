package sip

import (
	"bytes"
	"time"

	gosip "github.com/emiago/sipgo/sip"

	"github.com/switchboard-sip/switchboard/callctl"
)

// What the fast path notes when a call is answered, read from the indexed
// 2xx with the sipgo path's rules (recording, answeredBy, dialogs) but
// without parsing the whole message.

// headerValue is the value of the first header named name, nil if none.
func (m *msgIndex) headerValue(name string) []byte {
	for i := range m.n {
		h := &m.hdrs[i]
		line := h.line.of(m.b)
		if eqFold(line[:bytes.IndexByte(line, ':')], name) {
			return h.value.of(m.b)
		}
	}
	return nil
}

// fastRecording is recording for an indexed 2xx.
func (p *Proxy) fastRecording(m *msgIndex) string {
	return fastHeaderText(m, p.opts.RecordingHeader)
}

// fastHeaderText is headerText for an indexed message.
func fastHeaderText(m *msgIndex, name string) string {
	if name == "" {
		return ""
	}
	if v := m.headerValue(name); v != nil {
		return callctl.SanitizeHeaderValue(string(v))
	}
	return ""
}

// fastAnsweredBy is answeredBy for an indexed 2xx: P-Asserted-Identity,
// else the Contact's user part, else the To display name.
func fastAnsweredBy(m *msgIndex) string {
	b := m.b
	for i := range m.n {
		h := &m.hdrs[i]
		line := h.line.of(b)
		if h.kind != hOther || !eqFold(line[:bytes.IndexByte(line, ':')], "P-Asserted-Identity") {
			continue
		}
		for _, a := range idAppendValues(nil, string(h.value.of(b))) {
			if v := firstClean(a.User, a.Display); v != "" {
				return v
			}
		}
	}
	if u, ok := contactURI(m); ok {
		if v := firstClean(u.User); v != "" {
			return v
		}
	}
	if i := m.headerOf(hTo); i >= 0 {
		var u gosip.Uri
		var params gosip.HeaderParams
		if display, err := gosip.ParseAddressValue(string(m.hdrs[i].value.of(b)), &u, &params); err == nil {
			return firstClean(idDisplay(display))
		}
	}
	return ""
}

// contactURI parses the first Contact's URI.
func contactURI(m *msgIndex) (gosip.Uri, bool) {
	var u gosip.Uri
	i := m.headerOf(hContact)
	if i < 0 {
		return u, false
	}
	var params gosip.HeaderParams
	v := m.hdrs[i].value.of(m.b)
	if _, err := gosip.ParseAddressValue(string(v), &u, &params); err != nil || u.Wildcard {
		return u, false
	}
	return u, true
}

// rememberIndexed is dialogs.add for an INVITE and its 2xx as indexed.
func (d *dialogs) rememberIndexed(inv, ok *msgIndex) {
	c1, ok1 := contactURI(inv)
	c2, ok2 := contactURI(ok)
	if !ok1 || !ok2 {
		return
	}
	dl := &dialog{callerTag: string(inv.fromTag.of(inv.b)), caller: c1, callee: c2, at: time.Now()}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string]*dialog{}
	}
	d.m[string(inv.callID.of(inv.b))] = dl
}
