package main

import (
	"github.com/switchboard-sip/switchboard/contacts"
	"github.com/switchboard-sip/switchboard/web"
)

func init() {
	webHooks = append(webHooks, func(a *app, s *web.Server) {
		numbers, err := contacts.NewNumbers(a.cfg.Numbers.Region, a.cfg.Numbers.Internal)
		if err != nil {
			// The config was validated with the same call; this cannot fail.
			a.log.Error("numbers")
			return
		}
		web.RegisterContacts(s, web.ContactOptions{Store: a.deps.contacts, Numbers: numbers, Region: a.cfg.Numbers.Region})
		web.RegisterBlocks(s, web.BlockOptions{Store: a.deps.blocks, Region: a.cfg.Numbers.Region,
			Normalize: blockNormalizer(numbers, a.cfg.Numbers.Region)})
	})
}
