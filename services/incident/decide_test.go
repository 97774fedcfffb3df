package incident

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/events"
)

// open is a declared incident in the given status and severity.
func open(status events.Status, sev events.Severity) *State {
	return &State{ID: "inc-1", CaseNumber: "INC-1", Title: "API down", Service: "api",
		Severity: sev, Status: status, DeclaredBy: "alice", Events: 1, Version: 1}
}

func closedState() *State { return open(events.Closed, events.SEV2) }

// wantErr checks err against what a case expects: nil, a validation error
// naming field, a conflict, or ErrNotFound.
type wantErr struct {
	field    string // *ValidationError on this field
	conflict bool   // *ConflictError
	notFound bool   // ErrNotFound
	other    bool   // any other non-nil error
}

func (w wantErr) none() bool { return w == wantErr{} }

func checkErr(t *testing.T, err error, w wantErr) {
	t.Helper()
	var ve *ValidationError
	var ce *ConflictError
	switch {
	case w.none():
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
	case w.field != "":
		if !errors.As(err, &ve) {
			t.Fatalf("error %v (%T), want *ValidationError on %q", err, err, w.field)
		}
		if ve.Field != w.field {
			t.Fatalf("ValidationError.Field = %q, want %q (%v)", ve.Field, w.field, err)
		}
		if !strings.HasPrefix(ve.Error(), w.field+": ") {
			t.Fatalf("message %q does not name the field %q", ve.Error(), w.field)
		}
	case w.conflict:
		if !errors.As(err, &ce) {
			t.Fatalf("error %v (%T), want *ConflictError", err, err)
		}
		if errors.As(err, &ve) || errors.Is(err, ErrNotFound) {
			t.Fatalf("conflict %v is also a validation or not-found error", err)
		}
	case w.notFound:
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("error %v, want ErrNotFound", err)
		}
	case w.other:
		if err == nil || errors.As(err, &ve) || errors.As(err, &ce) || errors.Is(err, ErrNotFound) {
			t.Fatalf("error %v (%T), want a plain error", err, err)
		}
	}
}

var (
	invalidUTF8 = "ok \xff\xfe"
	long        = func(n int) string { return strings.Repeat("火", n) } // multi-byte: limits count characters
)

func TestDeclareDecide(t *testing.T) {
	valid := func() Declare {
		return Declare{Title: "  Checkout returns 500  ", Service: "checkout", Severity: "sev2",
			Summary: " card payments fail ", DeclaredBy: "alice", CaseNumber: "INC-7"}
	}
	tests := []struct {
		name  string
		edit  func(*Declare)
		state *State
		want  *events.Declared
		err   wantErr
	}{
		{name: "valid, trimmed, severity normalised", edit: func(*Declare) {},
			want: &events.Declared{Title: "Checkout returns 500", Service: "checkout", Severity: events.SEV2,
				Summary: "card payments fail", DeclaredBy: "alice", CaseNumber: "INC-7"}},
		{name: "severity as a digit", edit: func(c *Declare) { c.Severity = "1" },
			want: &events.Declared{Title: "Checkout returns 500", Service: "checkout", Severity: events.SEV1,
				Summary: "card payments fail", DeclaredBy: "alice", CaseNumber: "INC-7"}},
		{name: "confidential drill with codename", edit: func(c *Declare) {
			c.Confidential, c.Drill, c.Codename, c.Summary = true, true, "amber-fox", ""
		}, want: &events.Declared{Title: "Checkout returns 500", Service: "checkout", Severity: events.SEV2,
			DeclaredBy: "alice", CaseNumber: "INC-7", Confidential: true, Codename: "amber-fox", Drill: true}},
		{name: "title at the limit", edit: func(c *Declare) { c.Title = long(MaxTitle) },
			want: &events.Declared{Title: long(MaxTitle), Service: "checkout", Severity: events.SEV2,
				Summary: "card payments fail", DeclaredBy: "alice", CaseNumber: "INC-7"}},

		{name: "title missing", edit: func(c *Declare) { c.Title = "" }, err: wantErr{field: "title"}},
		{name: "title blank", edit: func(c *Declare) { c.Title = " \t\n " }, err: wantErr{field: "title"}},
		{name: "title too long", edit: func(c *Declare) { c.Title = long(MaxTitle + 1) }, err: wantErr{field: "title"}},
		{name: "title invalid UTF-8", edit: func(c *Declare) { c.Title = invalidUTF8 }, err: wantErr{field: "title"}},
		{name: "service missing", edit: func(c *Declare) { c.Service = "" }, err: wantErr{field: "service"}},
		{name: "service with space", edit: func(c *Declare) { c.Service = "check out" }, err: wantErr{field: "service"}},
		{name: "service with slash", edit: func(c *Declare) { c.Service = "shop/checkout" }, err: wantErr{field: "service"}},
		{name: "service too long", edit: func(c *Declare) { c.Service = strings.Repeat("s", MaxName+1) }, err: wantErr{field: "service"}},
		{name: "service invalid UTF-8", edit: func(c *Declare) { c.Service = "\xff" }, err: wantErr{field: "service"}},
		{name: "severity missing", edit: func(c *Declare) { c.Severity = "" }, err: wantErr{field: "severity"}},
		{name: "severity unknown", edit: func(c *Declare) { c.Severity = "SEV9" }, err: wantErr{field: "severity"}},
		{name: "severity zero", edit: func(c *Declare) { c.Severity = "0" }, err: wantErr{field: "severity"}},
		{name: "summary too long", edit: func(c *Declare) { c.Summary = long(MaxText + 1) }, err: wantErr{field: "summary"}},
		{name: "summary invalid UTF-8", edit: func(c *Declare) { c.Summary = invalidUTF8 }, err: wantErr{field: "summary"}},
		{name: "declared_by missing", edit: func(c *Declare) { c.DeclaredBy = " " }, err: wantErr{field: "declared_by"}},
		{name: "declared_by too long", edit: func(c *Declare) { c.DeclaredBy = long(MaxName + 1) }, err: wantErr{field: "declared_by"}},
		{name: "declared_by invalid UTF-8", edit: func(c *Declare) { c.DeclaredBy = invalidUTF8 }, err: wantErr{field: "declared_by"}},

		{name: "already declared", edit: func(*Declare) {}, state: open(events.Investigating, events.SEV3), err: wantErr{conflict: true}},
		{name: "case number not allocated", edit: func(c *Declare) { c.CaseNumber = "" }, err: wantErr{other: true}},
		{name: "confidential without codename", edit: func(c *Declare) { c.Confidential = true }, err: wantErr{other: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			st := tc.state
			if st == nil {
				st = &State{}
			}
			got, err := c.Decide(st)
			checkErr(t, err, tc.err)
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Decide = %#v\nwant %#v", got, tc.want)
			}
			if tc.err.field != "" {
				if verr := c.Validate(); verr == nil || verr.Error() != err.Error() {
					t.Fatalf("Validate = %v, Decide = %v; want the same validation error", verr, err)
				}
			}
		})
	}
}

func TestChangeSeverityDecide(t *testing.T) {
	tests := []struct {
		name  string
		cmd   ChangeSeverity
		state *State
		want  events.Data
		err   wantErr
	}{
		{name: "escalate", cmd: ChangeSeverity{Severity: "sev1", Reason: " all regions "}, state: open(events.Identified, events.SEV3),
			want: &events.SeverityChanged{From: events.SEV3, To: events.SEV1, Reason: "all regions"}},
		{name: "downgrade without reason", cmd: ChangeSeverity{Severity: "4"}, state: open(events.Monitoring, events.SEV2),
			want: &events.SeverityChanged{From: events.SEV2, To: events.SEV4}},
		{name: "same severity", cmd: ChangeSeverity{Severity: "SEV2"}, state: open(events.Investigating, events.SEV2), err: wantErr{conflict: true}},
		{name: "unknown severity", cmd: ChangeSeverity{Severity: "critical"}, state: open(events.Investigating, events.SEV2), err: wantErr{field: "severity"}},
		{name: "empty severity", cmd: ChangeSeverity{}, state: open(events.Investigating, events.SEV2), err: wantErr{field: "severity"}},
		{name: "reason too long", cmd: ChangeSeverity{Severity: "1", Reason: long(MaxText + 1)}, state: open(events.Investigating, events.SEV2), err: wantErr{field: "reason"}},
		{name: "reason invalid UTF-8", cmd: ChangeSeverity{Severity: "1", Reason: invalidUTF8}, state: open(events.Investigating, events.SEV2), err: wantErr{field: "reason"}},
		{name: "closed", cmd: ChangeSeverity{Severity: "1"}, state: closedState(), err: wantErr{conflict: true}},
		{name: "never declared", cmd: ChangeSeverity{Severity: "1"}, state: &State{}, err: wantErr{notFound: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.Decide(tc.state)
			checkErr(t, err, tc.err)
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Decide = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestUpdateStatusDecide(t *testing.T) {
	I, Id, M, R := events.Investigating, events.Identified, events.Monitoring, events.Resolved
	tests := []struct {
		from events.Status
		to   string
		err  wantErr
	}{
		// Forward, one step or skipping.
		{I, "identified", wantErr{}},
		{I, "monitoring", wantErr{}},
		{I, "resolved", wantErr{}},
		{Id, "monitoring", wantErr{}},
		{Id, "resolved", wantErr{}},
		{M, "resolved", wantErr{}},
		// Back to investigating when the fix did not hold.
		{Id, "investigating", wantErr{}},
		{M, "investigating", wantErr{}},
		{R, "investigating", wantErr{}},
		// Any other move backwards.
		{M, "identified", wantErr{conflict: true}},
		{R, "identified", wantErr{conflict: true}},
		{R, "monitoring", wantErr{conflict: true}},
		// Same status.
		{I, "investigating", wantErr{conflict: true}},
		{Id, "identified", wantErr{conflict: true}},
		{M, "monitoring", wantErr{conflict: true}},
		{R, "resolved", wantErr{conflict: true}},
		// Closing has its own command.
		{R, "closed", wantErr{conflict: true}},
		{I, "closed", wantErr{conflict: true}},
		// Case and spaces do not matter; unknown and empty are invalid.
		{I, "  Identified ", wantErr{}},
		{I, "fixed", wantErr{field: "status"}},
		{I, "", wantErr{field: "status"}},
		{I, "   ", wantErr{field: "status"}},
	}
	for _, tc := range tests {
		t.Run(string(tc.from)+"->"+tc.to, func(t *testing.T) {
			got, err := UpdateStatus{Status: tc.to, Message: " rolled back "}.Decide(open(tc.from, events.SEV2))
			checkErr(t, err, tc.err)
			if !tc.err.none() {
				return
			}
			want := &events.StatusUpdated{From: tc.from, To: events.Status(strings.ToLower(strings.TrimSpace(tc.to))), Message: "rolled back"}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decide = %#v, want %#v", got, want)
			}
			// CanTransition is the rule Decide applies.
			if err := CanTransition(tc.from, want.To); err != nil {
				t.Fatalf("CanTransition(%s, %s) = %v, Decide allowed it", tc.from, want.To, err)
			}
		})
	}

	t.Run("message too long", func(t *testing.T) {
		_, err := UpdateStatus{Status: "resolved", Message: long(MaxText + 1)}.Decide(open(I, events.SEV2))
		checkErr(t, err, wantErr{field: "message"})
	})
	t.Run("closed incident", func(t *testing.T) {
		for _, to := range []string{"investigating", "identified", "resolved", "closed"} {
			_, err := UpdateStatus{Status: to}.Decide(closedState())
			checkErr(t, err, wantErr{conflict: true})
		}
	})
	t.Run("never declared", func(t *testing.T) {
		_, err := UpdateStatus{Status: "identified"}.Decide(&State{})
		checkErr(t, err, wantErr{notFound: true})
	})
	t.Run("CanTransition from closed", func(t *testing.T) {
		// Closed has the highest rank: only investigating is not refused by
		// the transition rule itself; the commands refuse it (mustBeOpen).
		for _, to := range []events.Status{Id, M, R} {
			if CanTransition(events.Closed, to) == nil {
				t.Fatalf("CanTransition(closed, %s) allowed", to)
			}
		}
	})
}

func TestAssignCommanderDecide(t *testing.T) {
	withCommander := open(events.Identified, events.SEV2)
	withCommander.Commander = "bob"
	tests := []struct {
		name  string
		cmd   AssignCommander
		state *State
		want  events.Data
		err   wantErr
	}{
		{name: "first commander", cmd: AssignCommander{User: " bob "}, state: open(events.Investigating, events.SEV2),
			want: &events.CommanderAssigned{User: "bob"}},
		{name: "hand over", cmd: AssignCommander{User: "carol"}, state: withCommander,
			want: &events.CommanderAssigned{User: "carol", Previous: "bob"}},
		{name: "same commander", cmd: AssignCommander{User: "bob"}, state: withCommander, err: wantErr{conflict: true}},
		{name: "user missing", cmd: AssignCommander{User: "  "}, state: withCommander, err: wantErr{field: "user"}},
		{name: "user too long", cmd: AssignCommander{User: long(MaxName + 1)}, state: withCommander, err: wantErr{field: "user"}},
		{name: "user invalid UTF-8", cmd: AssignCommander{User: invalidUTF8}, state: withCommander, err: wantErr{field: "user"}},
		{name: "closed", cmd: AssignCommander{User: "carol"}, state: closedState(), err: wantErr{conflict: true}},
		{name: "never declared", cmd: AssignCommander{User: "carol"}, state: &State{}, err: wantErr{notFound: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.Decide(tc.state)
			checkErr(t, err, tc.err)
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Decide = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestAddNoteDecide(t *testing.T) {
	tests := []struct {
		name  string
		cmd   AddNote
		state *State
		want  events.Data
		err   wantErr
	}{
		{name: "note", cmd: AddNote{Text: "  rolled back v42 \n"}, state: open(events.Monitoring, events.SEV2),
			want: &events.NoteAdded{Text: "rolled back v42"}},
		{name: "note at the limit", cmd: AddNote{Text: long(MaxText)}, state: open(events.Resolved, events.SEV2),
			want: &events.NoteAdded{Text: long(MaxText)}},
		{name: "text missing", cmd: AddNote{}, state: open(events.Monitoring, events.SEV2), err: wantErr{field: "text"}},
		{name: "text blank", cmd: AddNote{Text: "\n\t"}, state: open(events.Monitoring, events.SEV2), err: wantErr{field: "text"}},
		{name: "text too long", cmd: AddNote{Text: long(MaxText + 1)}, state: open(events.Monitoring, events.SEV2), err: wantErr{field: "text"}},
		{name: "text invalid UTF-8", cmd: AddNote{Text: invalidUTF8}, state: open(events.Monitoring, events.SEV2), err: wantErr{field: "text"}},
		{name: "closed", cmd: AddNote{Text: "late"}, state: closedState(), err: wantErr{conflict: true}},
		{name: "never declared", cmd: AddNote{Text: "x"}, state: &State{}, err: wantErr{notFound: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.Decide(tc.state)
			checkErr(t, err, tc.err)
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Decide = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestCloseDecide(t *testing.T) {
	resolved := func() *State { return open(events.Resolved, events.SEV2) }
	tests := []struct {
		name  string
		cmd   Close
		state *State
		want  events.Data
		err   wantErr
	}{
		{name: "close resolved", cmd: Close{Resolution: " rolled back ", LessonsLearned: " canary first "}, state: resolved(),
			want: &events.IncidentClosed{Resolution: "rolled back", LessonsLearned: "canary first"}},
		{name: "without lessons", cmd: Close{Resolution: "fixed"}, state: resolved(),
			want: &events.IncidentClosed{Resolution: "fixed"}},
		{name: "resolution missing", cmd: Close{}, state: resolved(), err: wantErr{field: "resolution"}},
		{name: "resolution too long", cmd: Close{Resolution: long(MaxText + 1)}, state: resolved(), err: wantErr{field: "resolution"}},
		{name: "resolution invalid UTF-8", cmd: Close{Resolution: invalidUTF8}, state: resolved(), err: wantErr{field: "resolution"}},
		{name: "lessons too long", cmd: Close{Resolution: "x", LessonsLearned: long(MaxText + 1)}, state: resolved(), err: wantErr{field: "lessons_learned"}},
		{name: "from investigating", cmd: Close{Resolution: "x"}, state: open(events.Investigating, events.SEV2), err: wantErr{conflict: true}},
		{name: "from identified", cmd: Close{Resolution: "x"}, state: open(events.Identified, events.SEV2), err: wantErr{conflict: true}},
		{name: "from monitoring", cmd: Close{Resolution: "x"}, state: open(events.Monitoring, events.SEV2), err: wantErr{conflict: true}},
		{name: "already closed", cmd: Close{Resolution: "x"}, state: closedState(), err: wantErr{conflict: true}},
		{name: "never declared", cmd: Close{Resolution: "x"}, state: &State{}, err: wantErr{notFound: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.Decide(tc.state)
			checkErr(t, err, tc.err)
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Decide = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestRecordLinkDecide(t *testing.T) {
	l := events.Linked{System: "github", Ref: "17", URL: "https://example.invalid/pr/17"}
	cmd := RecordLink{Type: events.TypeGitHubPostmortemOpened, Linked: l}
	for _, st := range []*State{open(events.Resolved, events.SEV2), closedState()} {
		got, err := cmd.Decide(st)
		if err != nil {
			t.Fatalf("status %s: %v (links are recorded after close too)", st.Status, err)
		}
		if got.EventType() != events.TypeGitHubPostmortemOpened {
			t.Fatalf("type = %q", got.EventType())
		}
		if gl, ok := got.(events.Linked); !ok || gl.Ref != "17" || gl.System != "github" {
			t.Fatalf("Decide = %#v", got)
		}
	}
	_, err := cmd.Decide(&State{})
	checkErr(t, err, wantErr{notFound: true})
}

// Every command refuses a closed incident and a never-declared one.
func TestCommandsOnClosedAndMissing(t *testing.T) {
	cmds := map[string]Command{
		"severity":  ChangeSeverity{Severity: "1"},
		"status":    UpdateStatus{Status: "investigating"},
		"commander": AssignCommander{User: "zed"},
		"note":      AddNote{Text: "x"},
		"close":     Close{Resolution: "x"},
	}
	for name, c := range cmds {
		if _, err := c.Decide(closedState()); !isConflict(err) {
			t.Errorf("%s on closed: %v, want *ConflictError", name, err)
		}
		if _, err := c.Decide(&State{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s on never declared: %v, want ErrNotFound", name, err)
		}
	}
}

func isConflict(err error) bool {
	var ce *ConflictError
	return errors.As(err, &ce)
}
