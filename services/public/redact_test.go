package public_test

import (
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/public"
)

// TestRedactWithholdsWhoIsInside: on the redacted stream, a confidential
// incident names nobody by e-mail: not its declarer's or commander's
// mapped identity, not the members of its private channel. An open
// incident's events pass as they are.
func TestRedactWithholdsWhoIsInside(t *testing.T) {
	secret := incident.State{ID: events.NewID(), Confidential: true, Codename: "amber-falcon"}
	for _, d := range []events.Data{
		&events.Declared{Title: "key leak", Service: "release", Severity: events.SEV1, DeclaredBy: "U01", DeclaredByIdentity: "person:carol@example.com", Confidential: true, Codename: "amber-falcon"},
		&events.CommanderAssigned{User: "U02", UserIdentity: "person:dave@example.com"},
		&events.MembersChanged{ChannelID: "C1", Joined: []events.ChannelMember{{User: "U03", Identity: "person:erin@example.com"}},
			Left: []events.ChannelMember{{User: "U04", Identity: "person:frank@example.com"}}},
	} {
		env, err := events.New(secret.ID, d, events.Meta{Actor: "slack"})
		if err != nil {
			t.Fatal(err)
		}
		out, err := public.Redact(secret, env)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out.Data), "@example.com") || strings.Contains(string(out.Data), "U03") {
			t.Errorf("%s on the redacted stream: %s", env.Type, out.Data)
		}
		open := secret
		open.Confidential = false
		same, err := public.Redact(open, env)
		if err != nil || string(same.Data) != string(env.Data) {
			t.Errorf("%s of an open incident changed: %s (%v)", env.Type, same.Data, err)
		}
	}
}

// TestRedactWithholdsEvidence: what an item of evidence is, where it is
// kept and who holds it stay inside a confidential incident; its hash and
// id pass.
func TestRedactWithholdsEvidence(t *testing.T) {
	secret := incident.State{ID: events.NewID(), Confidential: true, Codename: "amber-falcon"}
	sha := strings.Repeat("ab", 32)
	for _, d := range []events.Data{
		&events.EvidenceAdded{EvidenceID: "E1", Name: "payroll dump", SHA256: sha, Location: "s3://forensics/payroll", Custodian: "carol", Description: "leaked file"},
		&events.EvidenceHandedOver{EvidenceID: "E1", From: "carol", To: "dave", Reason: "insurer's counsel"},
		&events.MilestoneRecorded{Name: "impact_started", Reason: "payroll export at 02:13"},
	} {
		env, err := events.New(secret.ID, d, events.Meta{Actor: "carol"})
		if err != nil {
			t.Fatal(err)
		}
		out, err := public.Redact(secret, env)
		if err != nil {
			t.Fatal(err)
		}
		for _, leak := range []string{"payroll", "forensics", "carol", "dave", "counsel", "leaked"} {
			if strings.Contains(string(out.Data), leak) {
				t.Errorf("%s on the redacted stream names %q: %s", env.Type, leak, out.Data)
			}
		}
		if _, ok := d.(*events.EvidenceAdded); ok && !strings.Contains(string(out.Data), sha) {
			t.Errorf("evidence hash withheld: %s", out.Data)
		}
	}
}
