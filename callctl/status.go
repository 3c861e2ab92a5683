package callctl

// SIP response codes the call path names (RFC 3261 §21). callctl imports
// nothing from SIP, so it keeps its own names for the few it decides on;
// they equal sipgo's constants of the same meaning.
const (
	StatusForbidden              = 403 // a rule's reject without a code; an unknown source
	StatusNotFound               = 404 // no route for the call
	StatusRequestTimeout         = 408
	StatusTemporarilyUnavailable = 480 // a closed hotline without a configured response
	StatusBusyHere               = 486
	StatusRequestTerminated      = 487 // a cancelled INVITE
	StatusBusyEverywhere         = 600
	StatusDecline                = 603 // a blocked call without blocking.response
)
