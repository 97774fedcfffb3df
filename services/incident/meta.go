package incident

// Meta says who asks for a command and how to make the request repeatable.
type Meta struct {
	Actor         string
	ActorName     string // display name of Actor
	Via           string // the identity that acted for Actor, if any
	CorrelationID string
	// Key, when set, makes the command idempotent: the event id (and a
	// declared incident's id) derive from it, so a retry appends nothing.
	Key string
	// ExpectVersion, when non-zero, is the version the caller last saw.
	ExpectVersion uint64
	// Allow, when set, is asked whether the caller may run the command on
	// the incident as it is decided on (need-to-know, a commander just
	// changed); its error refuses the command. The append is conditional
	// on that state, so the answer holds for what is stored.
	Allow func(State) error
}
