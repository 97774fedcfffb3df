package incident

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

var (
	declaredAt = time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	now        = declaredAt.Add(2 * time.Hour)
	sha        = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

// withFacts folds events into a declared incident, as the log would.
func withFacts(t *testing.T, ds ...events.Data) *State {
	t.Helper()
	s := &State{}
	all := append([]events.Data{&events.Declared{Title: "t", Service: "s", Severity: events.SEV2, DeclaredBy: "alice", CaseNumber: "INC-1"}}, ds...)
	for i, d := range all {
		e, err := events.New("inc-1", d, events.Meta{Actor: "alice", Time: declaredAt.Add(time.Duration(i) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ApplyData(e, d, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestBackdatedNoteDecide(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		now  time.Time
		want wantErr
	}{
		{"not backdated", time.Time{}, time.Time{}, wantErr{}},
		{"attack before the declaration", declaredAt.Add(-12 * time.Hour), now, wantErr{}},
		{"within clock skew", now.Add(ClockSkew), now, wantErr{}},
		{"future", now.Add(ClockSkew + time.Second), now, wantErr{field: "occurred_at"}},
		{"a year and more before", declaredAt.Add(-MaxBackdate - time.Second), now, wantErr{field: "occurred_at"}},
		{"no clock", now, time.Time{}, wantErr{other: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := AddNote{Text: "logged in", OccurredAt: tc.at, Now: tc.now}.Decide(withFacts(t))
			checkErr(t, err, tc.want)
			if err == nil && !d.(*events.NoteAdded).OccurredAt.Equal(tc.at) {
				t.Errorf("occurred_at = %v, want %v", d.(*events.NoteAdded).OccurredAt, tc.at)
			}
		})
	}
	// A time with an offset is kept in UTC.
	at := time.Date(2026, 11, 21, 15, 13, 0, 0, time.FixedZone("CET", 3600))
	d, err := AddNote{Text: "x", OccurredAt: at, Now: now}.Decide(withFacts(t))
	if err != nil || d.(*events.NoteAdded).OccurredAt.Location() != time.UTC {
		t.Errorf("Decide = %v, %v; want the time in UTC", d, err)
	}
}

func TestAddEvidenceDecide(t *testing.T) {
	valid := func() AddEvidence {
		return AddEvidence{Name: " auth log ", SHA256: " " + "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", Location: "s3://f/x", Custodian: "carol"}
	}
	tests := []struct {
		name  string
		state *State
		edit  func(*AddEvidence)
		want  wantErr
	}{
		{"valid", withFacts(t), func(*AddEvidence) {}, wantErr{}},
		{"closed incident still takes evidence", withFacts(t, &events.StatusUpdated{To: events.Resolved}, &events.IncidentClosed{Resolution: "r"}), func(*AddEvidence) {}, wantErr{}},
		{"no name", withFacts(t), func(c *AddEvidence) { c.Name = " " }, wantErr{field: "name"}},
		{"short hash", withFacts(t), func(c *AddEvidence) { c.SHA256 = "abc" }, wantErr{field: "sha256"}},
		{"not hex", withFacts(t), func(c *AddEvidence) { c.SHA256 = sha[:63] + "g" }, wantErr{field: "sha256"}},
		{"no location", withFacts(t), func(c *AddEvidence) { c.Location = "" }, wantErr{field: "location"}},
		{"no custodian", withFacts(t), func(c *AddEvidence) { c.Custodian = "" }, wantErr{field: "custodian"}},
		{"same item twice", withFacts(t, &events.EvidenceAdded{EvidenceID: "E1", Name: "n", SHA256: sha, Location: "l", Custodian: "c"}), func(*AddEvidence) {}, wantErr{conflict: true}},
		{"no incident", &State{}, func(*AddEvidence) {}, wantErr{notFound: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			d, err := c.Decide(tc.state)
			checkErr(t, err, tc.want)
			if err == nil {
				want := &events.EvidenceAdded{EvidenceID: "E1", Name: "auth log", SHA256: sha, Location: "s3://f/x", Custodian: "carol"}
				if !reflect.DeepEqual(d, want) {
					t.Errorf("Decide = %+v, want %+v", d, want)
				}
			}
		})
	}
}

func TestHandOverEvidenceDecide(t *testing.T) {
	held := withFacts(t, &events.EvidenceAdded{EvidenceID: "E1", Name: "n", SHA256: sha, Location: "l", Custodian: "carol"})
	added := held.Evidence[0].AddedAt
	tests := []struct {
		name string
		c    HandOverEvidence
		want wantErr
	}{
		{"to the next custodian", HandOverEvidence{EvidenceID: "e1", To: "dan"}, wantErr{}},
		{"from named rightly", HandOverEvidence{EvidenceID: "E1", From: "carol", To: "dan"}, wantErr{}},
		{"from the wrong holder", HandOverEvidence{EvidenceID: "E1", From: "bob", To: "dan"}, wantErr{conflict: true}},
		{"to who holds it", HandOverEvidence{EvidenceID: "E1", To: "carol"}, wantErr{conflict: true}},
		{"unknown item", HandOverEvidence{EvidenceID: "E9", To: "dan"}, wantErr{field: "evidence_id"}},
		{"no item", HandOverEvidence{To: "dan"}, wantErr{field: "evidence_id"}},
		{"no one to", HandOverEvidence{EvidenceID: "E1"}, wantErr{field: "to"}},
		{"backdated", HandOverEvidence{EvidenceID: "E1", To: "dan", At: added.Add(time.Minute), Now: now}, wantErr{}},
		{"before it was received", HandOverEvidence{EvidenceID: "E1", To: "dan", At: added.Add(-time.Minute), Now: now}, wantErr{conflict: true}},
		{"in the future", HandOverEvidence{EvidenceID: "E1", To: "dan", At: now.Add(time.Hour), Now: now}, wantErr{field: "at"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.c.Decide(held)
			checkErr(t, err, tc.want)
			if err == nil && (d.(*events.EvidenceHandedOver).From != "carol" || d.(*events.EvidenceHandedOver).EvidenceID != "E1") {
				t.Errorf("Decide = %+v, want from carol, E1", d)
			}
		})
	}
}

func TestEvidenceChainOfCustody(t *testing.T) {
	at := declaredAt.Add(30 * time.Second)
	s := withFacts(t,
		&events.EvidenceAdded{EvidenceID: "E1", Name: "n", SHA256: sha, Location: "l", Custodian: "carol"},
		&events.EvidenceHandedOver{EvidenceID: "E1", From: "carol", To: "dan", Reason: "legal hold", At: at},
		&events.EvidenceHandedOver{EvidenceID: "E1", From: "dan", To: "erin"},
	)
	v := s.View()
	e := v.Evidence[0]
	if e.Custodian != "erin" || len(e.Custody) != 2 {
		t.Fatalf("evidence = %+v, want held by erin after two hand-overs", e)
	}
	if !e.Custody[0].At.Equal(at) || e.Custody[0].RecordedAt.Equal(at) || !e.Custody[1].At.Equal(e.Custody[1].RecordedAt) {
		t.Errorf("custody = %+v: a backdated hand-over keeps its own time; another takes the recording time", e.Custody)
	}
	v.Evidence[0].Custody[0].To = "changed"
	if s.Evidence[0].Custody[0].To != "dan" {
		t.Error("View shares the custody chain with the state")
	}
	d, err := AddEvidence{Name: "m", SHA256: sha[:63] + "0", Location: "l", Custodian: "c"}.Decide(s)
	if err != nil || d.(*events.EvidenceAdded).EvidenceID != "E2" {
		t.Errorf("second item = %+v, %v; want E2", d, err)
	}
}

func TestRecordMilestoneDecide(t *testing.T) {
	first := withFacts(t)
	recorded := withFacts(t, &events.MilestoneRecorded{Name: "impact_started", OccurredAt: declaredAt.Add(-time.Hour)})
	tests := []struct {
		name     string
		state    *State
		c        RecordMilestone
		want     wantErr
		corrects bool
	}{
		{"first record", first, RecordMilestone{Name: "Impact_Started", OccurredAt: declaredAt.Add(-time.Hour), Now: now}, wantErr{}, false},
		{"correction", recorded, RecordMilestone{Name: "impact_started", OccurredAt: declaredAt.Add(-2 * time.Hour), Now: now, Reason: "earlier login"}, wantErr{}, true},
		{"same time again", recorded, RecordMilestone{Name: "impact_started", OccurredAt: declaredAt.Add(-time.Hour), Now: now}, wantErr{conflict: true}, false},
		{"unknown milestone", first, RecordMilestone{Name: "fixed", OccurredAt: now, Now: now}, wantErr{field: "name"}, false},
		{"no time", first, RecordMilestone{Name: "mitigated", Now: now}, wantErr{field: "occurred_at"}, false},
		{"future", first, RecordMilestone{Name: "mitigated", OccurredAt: now.Add(time.Hour), Now: now}, wantErr{field: "occurred_at"}, false},
		{"closed incident", withFacts(t, &events.StatusUpdated{To: events.Resolved}, &events.IncidentClosed{Resolution: "r"}), RecordMilestone{Name: "mitigated", OccurredAt: declaredAt, Now: now}, wantErr{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.c.Decide(tc.state)
			checkErr(t, err, tc.want)
			if err != nil {
				return
			}
			r := d.(*events.MilestoneRecorded)
			if tc.corrects != (r.Corrects != "" && r.Corrects == tc.state.Milestones.Recorded["impact_started"].EventID) {
				t.Errorf("corrects = %q, want the earlier record's id: %v", r.Corrects, tc.corrects)
			}
		})
	}
}

// TestDeriveMilestones: the fold's rules, one table.
func TestDeriveMilestones(t *testing.T) {
	t0 := declaredAt
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	declared := &events.Declared{Title: "t", Service: "s", Severity: events.SEV2, DeclaredBy: "alice", CaseNumber: "INC-1"}
	type step struct {
		min int
		d   events.Data
	}
	tests := []struct {
		name  string
		steps []step
		want  map[string]string // milestone → "source@minute"
	}{
		{"declared only", []step{{0, declared}}, map[string]string{"detected": "derived@0"}},
		{"commander and statuses", []step{{0, declared}, {3, &events.CommanderAssigned{User: "bob"}},
			{10, &events.StatusUpdated{To: events.Identified}}, {20, &events.StatusUpdated{To: events.Monitoring}},
			{30, &events.StatusUpdated{To: events.Resolved}}},
			map[string]string{"detected": "derived@0", "acknowledged": "derived@3", "mitigated": "derived@20", "resolved": "derived@30"}},
		{"first commander counts", []step{{0, declared}, {3, &events.CommanderAssigned{User: "bob"}}, {9, &events.CommanderAssigned{User: "carol"}}},
			map[string]string{"detected": "derived@0", "acknowledged": "derived@3"}},
		{"resolved straight away is mitigated too", []step{{0, declared}, {5, &events.StatusUpdated{To: events.Resolved}}},
			map[string]string{"detected": "derived@0", "mitigated": "derived@5", "resolved": "derived@5"}},
		{"reopened keeps the first", []step{{0, declared}, {5, &events.StatusUpdated{To: events.Monitoring}},
			{8, &events.StatusUpdated{To: events.Investigating}}, {12, &events.StatusUpdated{To: events.Monitoring}}},
			map[string]string{"detected": "derived@0", "mitigated": "derived@5"}},
		{"a record wins over the derivation", []step{{0, declared}, {20, &events.StatusUpdated{To: events.Monitoring}},
			{25, &events.MilestoneRecorded{Name: "mitigated", OccurredAt: at(15)}}, {26, &events.MilestoneRecorded{Name: "impact_started", OccurredAt: at(-90)}},
			{27, &events.MilestoneRecorded{Name: "detected", OccurredAt: at(-30)}}},
			map[string]string{"impact_started": "recorded@-90", "detected": "recorded@-30", "mitigated": "recorded@15"}},
		{"a correction wins over the record", []step{{0, declared}, {5, &events.MilestoneRecorded{Name: "impact_started", OccurredAt: at(-10)}},
			{6, &events.MilestoneRecorded{Name: "impact_started", OccurredAt: at(-40), Corrects: "x"}}},
			map[string]string{"impact_started": "recorded@-40", "detected": "derived@0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var evs []events.Envelope
			for _, s := range tc.steps {
				e, err := events.New("inc-1", s.d, events.Meta{Time: at(s.min)})
				if err != nil {
					t.Fatal(err)
				}
				evs = append(evs, e)
			}
			m, err := DeriveMilestones(evs)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			var order []string
			for _, ms := range m.Effective() {
				got[ms.Name] = ms.Source + "@" + fmtMin(ms.At.Sub(t0))
				order = append(order, ms.Name)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("milestones = %v, want %v", got, tc.want)
			}
			for i := 1; i < len(order); i++ {
				if indexOf(order[i-1]) > indexOf(order[i]) {
					t.Errorf("Effective order %v is not the response's order", order)
				}
			}
			// The state's fold gives the same answer.
			s := &State{}
			for i, e := range evs {
				if err := s.Apply(e, uint64(i+1)); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(s.Milestones.Effective(), m.Effective()) {
				t.Errorf("State milestones %+v differ from DeriveMilestones %+v", s.Milestones.Effective(), m.Effective())
			}
		})
	}
}

func TestMilestoneHistoryKeepsTheOriginal(t *testing.T) {
	s := withFacts(t, &events.MilestoneRecorded{Name: "impact_started", OccurredAt: declaredAt.Add(-time.Hour)})
	d, err := RecordMilestone{Name: "impact_started", OccurredAt: declaredAt.Add(-2 * time.Hour), Now: now}.Decide(s)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := events.New("inc-1", d, events.Meta{Time: now})
	if err := s.ApplyData(e, d, 99); err != nil {
		t.Fatal(err)
	}
	h := s.Milestones.History
	if len(h) != 2 || !h[0].At.Equal(declaredAt.Add(-time.Hour)) || h[1].Corrects != h[0].EventID {
		t.Fatalf("history = %+v, want the original and its correction naming it", h)
	}
	if got := s.Milestones.At("impact_started"); !got.Equal(declaredAt.Add(-2 * time.Hour)) {
		t.Errorf("impact_started = %v, want the correction", got)
	}
}

func fmtMin(d time.Duration) string { return fmt.Sprint(int(d / time.Minute)) }

func indexOf(name string) int {
	for i, n := range events.MilestoneNames {
		if n == name {
			return i
		}
	}
	return -1
}
