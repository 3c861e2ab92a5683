// Package stats holds the front-desk figures of SPEC §10: the Report that
// GET /api/stats, `switchboard stats` and the board's Insights view share.
// The figures are computed by the call store's indexed queries; this package
// only names their shape, so that every consumer agrees on it.
package stats

import "time"

// Filter selects the calls a Report covers (SPEC §8 /api/stats parameters).
type Filter struct {
	Since    time.Time
	Until    time.Time
	Hotline  string
	Campaign string
	// ContactID narrows every figure to one contact's calls; 0: all.
	ContactID int64
	// Location is the deployment's timezone: days and hours of the week
	// are counted in it.
	Location *time.Location
}

// Report is the JSON shape of GET /api/stats (SPEC §10). Times are in ms,
// rates 0–1; every list may be empty but is never null.
type Report struct {
	Since        time.Time      `json:"since"`
	Until        time.Time      `json:"until"`
	Totals       Totals         `json:"totals"`
	Hotlines     []HotlineStats `json:"hotlines"`
	Campaigns    []CampaignStat `json:"campaigns"`
	ByDay        []DayStat      `json:"by_day"`
	ByHour       []HourStat     `json:"by_hour"`
	TopCallers   []TopCaller    `json:"top_callers"`
	Reasons      []ReasonStat   `json:"reasons"`
	Satisfaction Satisfaction   `json:"satisfaction"`
	Resolved     Resolved       `json:"resolved"`

	loc  *time.Location // days and hours are counted in it
	days map[string]int // date → index in ByDay
}

// Totals counts every call in the range.
type Totals struct {
	Calls      int64   `json:"calls"`
	Answered   int64   `json:"answered"`
	Missed     int64   `json:"missed"`
	AnswerRate float64 `json:"answer_rate"`
}

// HotlineStats are the figures of one hotline (company).
type HotlineStats struct {
	Name       string   `json:"name"`
	Company    string   `json:"company"`
	Calls      int64    `json:"calls"`
	Answered   int64    `json:"answered"`
	Missed     int64    `json:"missed"`
	AnswerRate float64  `json:"answer_rate"`
	RingMSP50  int64    `json:"ring_ms_p50"`
	RingMSP90  int64    `json:"ring_ms_p90"`
	TalkMSP50  int64    `json:"talk_ms_p50"`
	Resolved   Resolved `json:"resolved"`
}

// CampaignStat are the figures of one campaign (attribution by the number
// dialled).
type CampaignStat struct {
	Campaign   string   `json:"campaign"`
	Calls      int64    `json:"calls"`
	Answered   int64    `json:"answered"`
	Missed     int64    `json:"missed"`
	AnswerRate float64  `json:"answer_rate"`
	Resolved   Resolved `json:"resolved"`
}

// DayStat counts the calls of one local date (YYYY-MM-DD).
type DayStat struct {
	Date     string `json:"date"`
	Calls    int64  `json:"calls"`
	Answered int64  `json:"answered"`
	Missed   int64  `json:"missed"`
	// The wrap-ups of the day's calls: how many were said resolved or
	// not, and the mean satisfaction of the scored ones (0: none), so
	// that both can be drawn over time.
	Resolved     int64   `json:"resolved"`
	Unresolved   int64   `json:"unresolved"`
	Satisfaction float64 `json:"satisfaction"`
	Scored       int64   `json:"scored"`

	scoreSum int64
}

// HourStat counts the calls of one hour of the week; Weekday 0 is Sunday,
// as in time.Weekday.
type HourStat struct {
	Weekday int   `json:"weekday"`
	Hour    int   `json:"hour"`
	Calls   int64 `json:"calls"`
}

// TopCaller is one of the most frequent callers.
type TopCaller struct {
	ContactID  int64     `json:"contact_id"`
	Name       string    `json:"name"`
	Number     string    `json:"number"`
	Calls      int64     `json:"calls"`
	LastCallAt time.Time `json:"last_call_at"`
	OpenMissed int64     `json:"open_missed"`
}

// ReasonStat counts the calls wrapped up with one reason.
type ReasonStat struct {
	Reason string `json:"reason"`
	Calls  int64  `json:"calls"`
}

// Satisfaction is the mean wrap-up score (1–5) over Count scored calls;
// Mean is 0 when Count is 0.
type Satisfaction struct {
	Mean  float64 `json:"mean"`
	Count int64   `json:"count"`
}

// Resolved is the share of calls the front desk said were resolved among
// the Count calls it said anything about (SPEC §10); Share is 0 when Count
// is 0.
type Resolved struct {
	Share float64 `json:"share"`
	Count int64   `json:"count"`

	yes int64
}

// Add counts yes calls said resolved and no said unresolved.
func (r *Resolved) Add(yes, no int64) {
	r.yes += yes
	r.Count += yes + no
	if r.Count > 0 {
		r.Share = float64(r.yes) / float64(r.Count)
	}
}
