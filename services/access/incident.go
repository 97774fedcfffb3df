package access

import (
	"context"
	"errors"
	"slices"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
)

// Need-to-know: a caller who may not read a confidential incident is told
// it does not exist (incident.ErrNotFound, the answer for an unknown id),
// so that neither its title nor its existence leaks. A caller who may read
// but not act is refused with a *ForbiddenError.

// IncidentOf is who may read and act on st. A Slack declarer, commander
// or channel member is known by both their Slack id and the identity it
// maps to, so a person signed in to the hub is recognised as them.
func IncidentOf(st incident.State) Incident {
	var members []string
	for _, m := range st.Members {
		members = append(members, memberNames(m)...)
	}
	return Incident{Confidential: st.Confidential, DeclaredBy: st.DeclaredBy, Commander: st.Commander,
		DeclaredByIdentity: st.DeclaredByIdentity, CommanderIdentity: st.CommanderIdentity, Members: members}
}

// memberNames are the names a channel member is recorded under.
func memberNames(m events.ChannelMember) []string {
	if m.Identity == "" {
		return []string{m.User}
	}
	return []string{m.User, m.Identity}
}

// WithMembersChanged returns inc after d, for a reader that follows an
// incident's events as they come (the live event stream): who left is
// removed from the members, who joined is added.
func (inc Incident) WithMembersChanged(d *events.MembersChanged) Incident {
	var gone []string
	for _, m := range d.Left {
		gone = append(gone, memberNames(m)...)
	}
	members := slices.DeleteFunc(slices.Clone(inc.Members), func(s string) bool { return slices.Contains(gone, s) })
	for _, m := range d.Joined {
		members = append(members, memberNames(m)...)
	}
	inc.Members = members
	return inc
}

// ForbiddenError refuses a caller what its role or the incident does not
// allow it.
type ForbiddenError struct{ Reason string }

func (e *ForbiddenError) Error() string { return e.Reason }

// Allowed checks the caller in ctx may take action a on st: nil,
// ErrUnauthenticated, incident.ErrNotFound for an incident it may not read,
// or a *ForbiddenError.
func Allowed(ctx context.Context, st incident.State, a Action) error {
	who, ok := From(ctx)
	if !ok {
		return ErrUnauthenticated
	}
	acc := IncidentOf(st)
	if Can(who, a, &acc) {
		return nil
	}
	if !Can(who, Read, &acc) {
		return incident.ErrNotFound
	}
	return &ForbiddenError{Reason: "you may read this incident but not " + a.String() + " on it"}
}

// Incidents loads an incident's state (the command handler does).
type Incidents interface {
	Get(ctx context.Context, id string) (incident.State, error)
}

// MayRead reports whether the caller in ctx may read incident id; false
// too when it cannot be loaded (nothing is shown of what is not checked).
func MayRead(ctx context.Context, c Incidents, id string) bool {
	st, err := c.Get(ctx, id)
	return err == nil && Allowed(ctx, st, Read) == nil
}

// Require checks the caller in ctx holds role need: nil,
// ErrUnauthenticated or a *ForbiddenError.
func Require(ctx context.Context, need Role) error {
	who, ok := From(ctx)
	if !ok {
		return ErrUnauthenticated
	}
	if who.Role < need {
		return &ForbiddenError{Reason: "this needs the " + need.String() + " role; " + who.Name + " has " + who.Role.String()}
	}
	return nil
}

// IsForbidden reports whether err refuses the caller (403).
func IsForbidden(err error) bool {
	var f *ForbiddenError
	return errors.As(err, &f)
}
