package stats

import "time"

// DefaultDays is the length of the range of a report when none is asked for (SPEC §10:
// the last 30 days).
const DefaultDays = 30

// maxDays bounds the by_day list of a report: ten years of dates.
const maxDays = 3660

// Range completes a filter: Until defaults to now, Since to local midnight
// DefaultDays−1 days before Until's date, so that the default covers 30
// calendar days in loc, today included.
func Range(f Filter, now time.Time) Filter {
	if f.Location == nil {
		f.Location = time.UTC
	}
	if f.Until.IsZero() {
		f.Until = now
	}
	if f.Since.IsZero() {
		u := f.Until.In(f.Location)
		f.Since = time.Date(u.Year(), u.Month(), u.Day()-(DefaultDays-1), 0, 0, 0, 0, f.Location)
	}
	return f
}

// Empty is the report of a range without calls: every list empty except
// by_day, which holds each local date of the range, and by_hour, which
// holds all 168 hours of the week, so that charts have their axes.
func Empty(f Filter) Report {
	loc := f.Location
	if loc == nil {
		loc = time.UTC
	}
	r := Report{
		Since: f.Since.In(loc), Until: f.Until.In(loc),
		Hotlines: []HotlineStats{}, Campaigns: []CampaignStat{}, ByDay: []DayStat{},
		ByHour: make([]HourStat, 0, 7*24), TopCallers: []TopCaller{}, Reasons: []ReasonStat{},
		loc: loc, days: map[string]int{},
	}
	s := r.Since
	day := time.Date(s.Year(), s.Month(), s.Day(), 0, 0, 0, 0, loc)
	for ; day.Before(r.Until) && len(r.ByDay) < maxDays; day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc) {
		date := day.Format(time.DateOnly)
		r.days[date] = len(r.ByDay)
		r.ByDay = append(r.ByDay, DayStat{Date: date})
	}
	for wd := range 7 {
		for h := range 24 {
			r.ByHour = append(r.ByHour, HourStat{Weekday: wd, Hour: h})
		}
	}
	return r
}

// AddBucket counts calls that started at t (a bucket that lies within one
// local hour) into by_day and by_hour.
func (r *Report) AddBucket(t time.Time, calls, answered, missed int64) {
	loc := r.loc
	if loc == nil {
		loc = time.UTC
	}
	l := t.In(loc)
	if i, ok := r.days[l.Format(time.DateOnly)]; ok {
		d := &r.ByDay[i]
		d.Calls, d.Answered, d.Missed = d.Calls+calls, d.Answered+answered, d.Missed+missed
	}
	if len(r.ByHour) == 7*24 {
		r.ByHour[int(l.Weekday())*24+l.Hour()].Calls += calls
	}
}

// AddDay counts the calls of one local date (YYYY-MM-DD, from the
// rollups) into by_day, and those of each local hour of that date into
// by_hour.
func (r *Report) AddDay(date string, calls, answered, missed int64, hours [24]int64) {
	if i, ok := r.days[date]; ok {
		d := &r.ByDay[i]
		d.Calls, d.Answered, d.Missed = d.Calls+calls, d.Answered+answered, d.Missed+missed
	}
	t, err := time.Parse(time.DateOnly, date)
	if err != nil || len(r.ByHour) != 7*24 {
		return
	}
	wd := int(t.Weekday())
	for h, n := range hours {
		r.ByHour[wd*24+h].Calls += n
	}
}

// AddWrapUps counts wrap-ups of calls of a local date (YYYY-MM-DD) into
// by_day: resolved and unresolved ones, and scored ones with the sum of
// their scores.
func (r *Report) AddWrapUps(date string, resolved, unresolved, scored, scoreSum int64) {
	i, ok := r.days[date]
	if !ok {
		return
	}
	d := &r.ByDay[i]
	d.Resolved += resolved
	d.Unresolved += unresolved
	d.Scored += scored
	d.scoreSum += scoreSum
	if d.Scored > 0 {
		d.Satisfaction = float64(d.scoreSum) / float64(d.Scored)
	}
}

// Rate is the answer rate: answered calls among those the front desk could
// answer (answered or missed); 0 when there were none.
func Rate(answered, missed int64) float64 {
	if answered+missed == 0 {
		return 0
	}
	return float64(answered) / float64(answered+missed)
}

// Caller describes a contact for top_callers: its name, first number and
// open missed calls; ok is false when the contact is gone.
type Caller func(contactID int64) (name, number string, openMissed int64, ok bool)

// Complete adds what the call store does not know: each hotline's company
// (from the config) and each top caller's contact.
func (r *Report) Complete(companies map[string]string, caller Caller) {
	for i := range r.Hotlines {
		r.Hotlines[i].Company = companies[r.Hotlines[i].Name]
	}
	if caller == nil {
		return
	}
	for i := range r.TopCallers {
		t := &r.TopCallers[i]
		if name, number, open, ok := caller(t.ContactID); ok {
			t.Name, t.Number, t.OpenMissed = name, number, open
		}
	}
}
