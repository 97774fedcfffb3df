package events

import (
	"strings"
	"time"
)

// Signals are what producers that are not people report: monitoring alerts,
// cloud security findings, customer-support escalations. Each one is stored
// once, normalised, on the SIGNALS stream before the producer hears 202.
const (
	SignalStream        = "SIGNALS"
	SignalSubjectPrefix = "signals"
)

// Event types of signals.
const (
	// TypeSignalReceived is a normalised signal on the SIGNALS stream.
	TypeSignalReceived = "io.hikeshi.signal.received"
	// TypeSignalOccurrences is a fact on an incident: how many signals of
	// its group arrived so far and how its firing set changed. Signals
	// handled together share one, so a storm never adds one per alert.
	TypeSignalOccurrences = "io.hikeshi.signal.occurrences_counted"
)

// Signal statuses.
const (
	SignalFiring   = "firing"
	SignalResolved = "resolved"
)

// Signal severities, from worst to mildest.
var SignalSeverities = []string{"critical", "high", "medium", "low", "info"}

// Signal is a normalised alert, finding or escalation.
type Signal struct {
	// Source is the producer (alertmanager, grafana, aws, gcp-scc, or the
	// name a generic producer gives itself); it is a subject token.
	Source string `json:"source"`
	// Kind is alert, finding or escalation.
	Kind string `json:"kind"`
	// Fingerprint identifies the condition across occurrences (the same
	// alert firing, resolving and firing again).
	Fingerprint string `json:"fingerprint"`
	Status      string `json:"status"` // firing or resolved
	Title       string `json:"title"`
	Summary     string `json:"summary,omitempty"`
	// Severity is one of SignalSeverities.
	Severity string            `json:"severity"`
	Labels   map[string]string `json:"labels,omitempty"`
	Account  string            `json:"account,omitempty"` // AWS account
	Project  string            `json:"project,omitempty"` // GCP project
	Region   string            `json:"region,omitempty"`
	Resource string            `json:"resource,omitempty"`
	Service  string            `json:"service,omitempty"` // suspected service
	Links    []SignalLink      `json:"links,omitempty"`
	StartsAt time.Time         `json:"starts_at"`
	EndsAt   time.Time         `json:"ends_at,omitzero"`
	// Revision tells updates of one occurrence apart (a finding's update
	// time, count and severity): each is a new signal, not a copy.
	Revision string `json:"revision,omitempty"`
	// GroupKey gathers signals that belong to one incident: the producer's
	// grouping under its source and sender (Alertmanager's groupKey under
	// alertmanager/<externalURL>/<receiver>/), or source and fingerprint
	// when the producer has none.
	GroupKey string `json:"group_key"`
	// Escalations only.
	ReportedBy     string `json:"reported_by,omitempty"`
	CustomerImpact string `json:"customer_impact,omitempty"`
}

// SignalLink points back to the producer (a dashboard, a console page).
type SignalLink struct {
	Title string `json:"title,omitempty"`
	URL   string `json:"url"`
}

// SignalOccurrences counts the signals attached to an incident.
type SignalOccurrences struct {
	GroupKey string `json:"group_key"`
	// Occurrences is every signal of the group attached so far.
	Occurrences int `json:"occurrences"`
	// Firing is how many fingerprints of the group are firing now.
	Firing int `json:"firing"`
	// The last signal this record covers.
	Fingerprint string `json:"fingerprint"`
	Status      string `json:"status"`
	Title       string `json:"title"`
	// Reason is first, count, status or resolved (every fingerprint of
	// the group resolved).
	Reason string `json:"reason"`
	// Changes are the changes of the group's firing set this record
	// reports, in the order they arrived; several signals handled together
	// share one record, and a record holds at most MaxSignalChanges.
	Changes []SignalChange `json:"changes,omitempty"`
}

// MaxSignalChanges bounds the changes of one occurrences record.
const MaxSignalChanges = 100

// Changes of a fingerprint in its group's firing set.
const (
	ChangeJoined      = "joined"       // the fingerprint's first signal in the group
	ChangeResolved    = "resolved"     // a firing fingerprint resolved
	ChangeFiringAgain = "firing_again" // a resolved fingerprint fires again
)

// SignalChange is one fingerprint joining, resolving or firing again.
type SignalChange struct {
	Fingerprint string `json:"fingerprint"`
	Change      string `json:"change"` // joined, resolved or firing_again
	Status      string `json:"status"` // the signal's status
	Title       string `json:"title,omitempty"`
}

func (Signal) EventType() string            { return TypeSignalReceived }
func (SignalOccurrences) EventType() string { return TypeSignalOccurrences }

// SignalKey is the dedup key of a signal: the same source, fingerprint,
// status and start time are one signal however often they are delivered.
// It is a valid subject token and CloudEvents subject.
func SignalKey(source, fingerprint, status string, startsAt time.Time) string {
	return DeriveID("signal", source, fingerprint, status, startsAt.UTC().Format(time.RFC3339Nano))
}

// Key is the signal's dedup key: SignalKey, and the revision when there
// is one, so an updated finding is stored while a re-sent one is not.
func (s *Signal) Key() string {
	if s.Revision == "" {
		return SignalKey(s.Source, s.Fingerprint, s.Status, s.StartsAt)
	}
	return DeriveID("signal", s.Source, s.Fingerprint, s.Status, s.StartsAt.UTC().Format(time.RFC3339Nano), s.Revision)
}

// SignalSubject is signals.<source>.<kind>. Subjects are few on purpose:
// the stream keeps an index entry per subject in memory, so a subject per
// signal would grow the server by every alert ever stored.
func SignalSubject(source, kind string) string {
	return SignalSubjectPrefix + "." + source + "." + kind
}

// SignalSourceFromSubject extracts the source token.
func SignalSourceFromSubject(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, SignalSubjectPrefix+".")
	if !ok {
		return "", false
	}
	src, _, ok := strings.Cut(rest, ".")
	return src, ok && src != ""
}

func init() {
	Register(Spec{Type: TypeSignalReceived, Name: "signal_received", Version: 1,
		Doc: "A normalised alert, finding or escalation, stored once per source, fingerprint, status, start time and revision.",
		New: func() Data { return &Signal{} }})
	Register(Spec{Type: TypeSignalOccurrences, Name: "signal_occurrences_counted", Version: 1,
		Doc: "Signals of the incident's group counted so far, with every change of its firing set.",
		New: func() Data { return &SignalOccurrences{} }})
}
