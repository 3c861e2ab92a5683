package callstore

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/switchboard-sip/switchboard/cdr"
)

// A journal frame is a record's version: 4 bytes of payload length, 4 of
// the payload's CRC-32C (a torn write at a crash shows as a bad frame and
// ends the replay), then the payload: a format byte, then the record's
// fields in a fixed order, strings and integers as varints: no reflection,
// no JSON. TestJournalCodecEveryField fails when cdr.Record gains a field
// the codec does not carry.
const frameHeader = 8

// frameFormat is the payload's first byte; a new field list takes a new
// value and decodeRecord keeps reading the old ones.
const frameFormat = 1

// maxFrame bounds a frame read back: a longer length is damage.
const maxFrame = 1 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var errBadFrame = errors.New("callstore: damaged journal frame")

// appendFrame appends r as one frame to b.
func appendFrame(b []byte, r *cdr.Record) []byte {
	start := len(b)
	b = append(b, make([]byte, frameHeader)...)
	b = append(b, frameFormat)
	for _, s := range [...]string{r.ID, r.CallID, string(r.Direction), r.Trunk, r.Caller, r.CallerRaw,
		r.CallerName, r.Called, r.CalledRaw, r.Hotline, r.Campaign, r.Node, string(r.Disposition),
		r.AnsweredBy, r.EndReason, r.MissedID, r.Recording, r.WrapUp.Reason, r.WrapUp.Notes,
		r.EmergencyCallback, r.WrapUp.Transcript} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, n := range [...]int64{r.ContactID, toMillis(r.StartedAt), r.RingMS, r.TalkMS,
		int64(r.SIPStatus), int64(r.WrapUp.Satisfaction), boolVal(&r.Emergency), tristate(r.WrapUp.Resolved)} {
		b = binary.AppendVarint(b, n)
	}
	for _, t := range [...]*time.Time{r.RingingAt, r.AnsweredAt, r.EndedAt, r.WrapUp.At} {
		if t == nil {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = binary.AppendVarint(b, toMillis(*t))
	}
	payload := b[start+frameHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crcTable))
	return b
}

func boolVal(b *bool) int64 {
	if *b {
		return 1
	}
	return 0
}

// tristate encodes an optional bool: 0 unset, 1 false, 2 true.
func tristate(b *bool) int64 {
	if b == nil {
		return 0
	}
	return 1 + boolVal(b)
}

// nextFrame decodes the first frame of b and returns the rest; ok is false
// at the end of b or at a damaged or incomplete frame.
func nextFrame(b []byte) (r cdr.Record, rest []byte, ok bool) {
	if len(b) < frameHeader {
		return r, nil, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxFrame || uint64(len(b)-frameHeader) < uint64(n) {
		return r, nil, false
	}
	payload := b[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return r, nil, false
	}
	r, err := decodeRecord(payload)
	if err != nil {
		return r, nil, false
	}
	return r, b[frameHeader+int(n):], true
}

// decoder reads the fields of a payload in order, remembering the first
// error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) str() string {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.err, d.b = errBadFrame, nil
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}

func (d *decoder) int() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.err, d.b = errBadFrame, nil
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) time() *time.Time {
	if len(d.b) == 0 {
		d.err = errBadFrame
		return nil
	}
	present := d.b[0]
	d.b = d.b[1:]
	if present == 0 {
		return nil
	}
	t := fromMillis(d.int())
	return &t
}

func decodeRecord(b []byte) (cdr.Record, error) {
	if len(b) == 0 || b[0] != frameFormat {
		return cdr.Record{}, errBadFrame
	}
	d := &decoder{b: b[1:]}
	var r cdr.Record
	for _, p := range [...]*string{&r.ID, &r.CallID, (*string)(&r.Direction), &r.Trunk, &r.Caller, &r.CallerRaw,
		&r.CallerName, &r.Called, &r.CalledRaw, &r.Hotline, &r.Campaign, &r.Node, (*string)(&r.Disposition),
		&r.AnsweredBy, &r.EndReason, &r.MissedID, &r.Recording, &r.WrapUp.Reason, &r.WrapUp.Notes,
		&r.EmergencyCallback, &r.WrapUp.Transcript} {
		*p = d.str()
	}
	r.ContactID = d.int()
	r.StartedAt = fromMillis(d.int())
	r.RingMS, r.TalkMS = d.int(), d.int()
	r.SIPStatus, r.WrapUp.Satisfaction = int(d.int()), int(d.int())
	r.Emergency = d.int() == 1
	if v := d.int(); v != 0 {
		resolved := v == 2
		r.WrapUp.Resolved = &resolved
	}
	for _, p := range [...]**time.Time{&r.RingingAt, &r.AnsweredAt, &r.EndedAt, &r.WrapUp.At} {
		*p = d.time()
	}
	if d.err != nil || len(d.b) != 0 || r.ID == "" {
		return cdr.Record{}, errBadFrame
	}
	return r, nil
}
