package wire

// Emergency is the JSON form of an emergency call as the front desk sees
// it (SPEC §4, §8): the call.emergency event, GET /api/emergencies, the
// acknowledgement's answer and the webhook's "emergency" part. ID is the
// call record's id.
type Emergency struct {
	ID             string  `json:"id"`
	CallID         string  `json:"call_id"`
	Extension      string  `json:"extension"`
	Name           string  `json:"name"`
	Location       string  `json:"location"`
	Dialled        string  `json:"dialled"`
	Presented      string  `json:"presented"`
	Node           string  `json:"node"`
	At             string  `json:"at"`
	CallbackUntil  string  `json:"callback_until"`
	Answered       bool    `json:"answered"`
	Disposition    string  `json:"disposition"`
	AcknowledgedBy string  `json:"acknowledged_by"`
	AcknowledgedAt *string `json:"acknowledged_at"`
}

// EmergencyList is the body of GET /api/emergencies.
type EmergencyList struct {
	Items []Emergency `json:"items"`
	Next  string      `json:"next"`
}
