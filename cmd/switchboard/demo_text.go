package main

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-sip/switchboard/internal/simsip"
)

// demoTexts are the text messages the demo's callers send between their
// calls, so that the contact trace shows messages next to calls (SPEC §2).
var demoTexts = []simsip.Text{
	{From: "+4930111222", To: demoACME, Body: "Hi, Jane here. Please call me back after 4 pm, it is about order 4711."},
	{From: "+4917612345678", To: demoACME, Body: "Your line was busy. Is the shop open on Saturday?"},
}

// text sends one text message from the trunk and prints how it went.
func (d *demo) text(ctx context.Context, t *simsip.Trunk, m simsip.Text) {
	m.Target = fmt.Sprintf("127.0.0.1:%d", d.sipPort)
	started := time.Now()
	status, err := t.Text(ctx, m)
	outcome := fmt.Sprintf("delivered (%d)", status)
	switch {
	case err != nil:
		outcome = "failed: " + err.Error()
	case status >= 300:
		outcome = fmt.Sprintf("not delivered (%d)", status)
	}
	d.printf("  %s  %-34s → %-19s text %s\n", started.Format("15:04:05"), m.From, "ACME GmbH", outcome)
}
