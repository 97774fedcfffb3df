package events

// The redacted copy of the incident stream, for consumers outside the
// organisation's need-to-know: every event of INCIDENTS, republished by the
// hub with a confidential incident's title, service and free text replaced
// exactly as outbound integrations replace them. Subjects mirror the
// incident stream's: public.incidents.<incident-id>.<event-name>.
const (
	PublicStream        = "INCIDENTS_PUBLIC"
	PublicSubjectPrefix = "public." + IncidentSubjectPrefix
)
