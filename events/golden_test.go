package events_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
)

// Golden files are hand-kept examples of every published version of every
// event type: testdata/<type>.v<version>.json, plus optional variants
// testdata/<type>.v<version>.<variant>.json. They are never regenerated: a
// file that stops decoding to the values below means a published event no
// longer reads, which is the bug this test exists to catch.

const (
	inc42     = "019593fa-5d95-7d57-b4cb-bc6b32ea3529"
	declared  = "019593fa-5dac-7777-9879-783d0077d30e"
	closedEvt = "0195a46c-8b00-7e4d-a7ea-d307d86452a7"
	corr42    = "7d1f3c9e-2b4a-4e8f-a6c1-0f9d2e3b5a47"
	closeCorr = "c9d8e7f6-a5b4-4c3d-9e2f-1a0b9c8d7e6f"
	incSec    = "0195f58f-4d8d-701e-b267-2504cef45548" // the confidential INC-43
)

type golden struct {
	id, subject, time, actor, causation, correlation string
	actorName, via                                   string // added later, optional: older files have neither
	prevHash                                         string // hash chain, added later (see chain_test.go)
	data                                             events.Data
}

var goldens = map[string]golden{
	"io.hikeshi.incident.declared.v1.json": {
		id: declared, subject: inc42, time: "2025-03-14T09:26:53.612Z", actor: "alice", correlation: corr42,
		data: &events.Declared{
			Title:      "Card payments failing at checkout",
			Service:    "payments",
			Severity:   events.SEV2,
			Summary:    "About 12% of card authorisations return 502 since 09:15 UTC; PayPal and bank transfers are unaffected.",
			DeclaredBy: "alice",
			CaseNumber: "INC-42",
		},
	},
	"io.hikeshi.incident.declared.v1.confidential.json": {
		id: "0195f58f-4dbe-7567-b277-1c7d8530873b", subject: "0195f58f-4d8d-701e-b267-2504cef45548",
		time: "2025-04-02T08:12:44.350Z", actor: "carol", correlation: "a3c5e7f9-1b2d-4c6e-8f0a-2b4d6f8a0c1e",
		data: &events.Declared{
			Title:        "Suspected credential stuffing against customer login",
			Service:      "identity",
			Severity:     events.SEV1,
			Summary:      "Login failures up 40x from a rotating pool of residential IPs.",
			DeclaredBy:   "carol",
			CaseNumber:   "INC-43",
			Confidential: true,
			Codename:     "sapphire-unicorn",
		},
	},
	"io.hikeshi.incident.declared.v1.drill.json": {
		// The id is derived from the idempotency key (see TestDeriveIDIsStable).
		id: "e312e2c8-b83d-8024-8253-e5d7d0171c62", subject: "0196a5ae-8e09-7745-9975-6a96c8c1d3fd",
		time: "2025-05-06T13:00:02.467Z", actor: "dave",
		data: &events.Declared{
			Title:      "Game day: search cluster loses a zone",
			Service:    "search",
			Severity:   events.SEV3,
			DeclaredBy: "dave",
			CaseNumber: "INC-44",
			Drill:      true,
		},
	},
	"io.hikeshi.incident.commander_assigned.v1.json": {
		id: "019593fe-3c44-77e6-a7cf-2dc16c6e4796", subject: inc42, time: "2025-03-14T09:31:07.204Z",
		actor: "alice", correlation: "5e0b8d2c-71a4-4f39-b6e8-c2d9a0f4e173",
		data: &events.CommanderAssigned{User: "bob", Previous: "alice"},
	},
	"io.hikeshi.incident.severity_changed.v1.json": {
		id: "0195940d-e0e6-7d96-a579-1edc4b57531e", subject: inc42, time: "2025-03-14T09:48:12.390Z",
		actor: "bob", correlation: "0f6a2d4b-93c8-4e15-a7b0-d8e1f2c3b4a5",
		data: &events.SeverityChanged{From: events.SEV2, To: events.SEV1,
			Reason: "Card authorisations now fail in every region, not only eu-west-1."},
	},
	"io.hikeshi.incident.status_updated.v1.json": {
		id: "0195941b-31fe-7dc8-8a01-7a5ce945adcb", subject: inc42, time: "2025-03-14T10:02:45.118Z",
		actor: "bob", correlation: "86c4b1e2-5d7f-4a09-b3e6-1f2a3b4c5d6e",
		data: &events.StatusUpdated{From: events.Investigating, To: events.Identified,
			Message: "The TLS certificate of the card-processor gateway expired at 09:14 UTC; a renewed one is being deployed."},
	},
	"io.hikeshi.incident.note_added.v1.json": {
		id: "01959426-8dbe-7de4-88af-f8b4c17124bf", subject: inc42, time: "2025-03-14T10:15:09.502Z", actor: "erin",
		data: &events.NoteAdded{Text: "Support has 230 tickets tagged checkout-502; macro with the status page link sent."},
	},
	// An authenticated actor: its stable id and display name, and the
	// integration token that acted for it (additive, so still version 1).
	"io.hikeshi.incident.note_added.v1.actor.json": {
		id: "01959431-2c7a-7b10-9d4e-5f6a7b8c9d0e", subject: inc42, time: "2025-03-14T10:27:41.003Z",
		actor: "person:erin@example.com", actorName: "Erin Park", via: "token:0195941f-0a1b-7c2d-8e3f-4a5b6c7d8e9f",
		data: &events.NoteAdded{Text: "Status page updated from the support console."},
	},
	// A backdated fact: when it happened, apart from when it was recorded
	// (additive, so still version 1).
	"io.hikeshi.incident.note_added.v1.backdated.json": {
		id: "0195f5c0-1a2b-7c3d-8e4f-5a6b7c8d9e01", subject: incSec, time: "2025-04-02T10:05:31.250Z", actor: "carol",
		data: &events.NoteAdded{Text: "The attacker logged in to the VPN as svc-backup from 203.0.113.7.",
			OccurredAt: time.Date(2025, 4, 2, 2, 13, 0, 0, time.UTC)},
	},
	"io.hikeshi.incident.evidence_added.v1.json": {
		id: "0195f5c4-2b3c-7d4e-9f50-6b7c8d9e0f12", subject: incSec, time: "2025-04-02T10:20:44.018Z", actor: "carol",
		data: &events.EvidenceAdded{EvidenceID: "E1", Name: "vpn-gw-01 auth log, 2025-04-01 to 2025-04-02",
			SHA256:   "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Location: "s3://acme-forensics/INC-43/vpn-gw-01-auth.log.gz", Custodian: "carol",
			Description: "Exported by the network team; covers the first login from 203.0.113.7."},
	},
	"io.hikeshi.incident.evidence_handed_over.v1.json": {
		id: "0195f5e1-3c4d-7e5f-8061-7c8d9e0f1a23", subject: incSec, time: "2025-04-02T12:02:10.700Z", actor: "carol",
		data: &events.EvidenceHandedOver{EvidenceID: "E1", From: "carol", To: "dan.legal", Reason: "Legal hold for the insurer.",
			At: time.Date(2025, 4, 2, 11, 45, 0, 0, time.UTC)},
	},
	"io.hikeshi.incident.milestone_recorded.v1.json": {
		id: "0195f5c8-4d5e-7f60-8172-8d9e0f1a2b34", subject: incSec, time: "2025-04-02T10:31:02.400Z", actor: "carol",
		data: &events.MilestoneRecorded{Name: "impact_started", OccurredAt: time.Date(2025, 4, 2, 2, 13, 0, 0, time.UTC)},
	},
	"io.hikeshi.incident.milestone_recorded.v1.correction.json": {
		id: "0195f601-5e6f-7071-9283-9e0f1a2b3c45", subject: incSec, time: "2025-04-02T14:12:45.900Z", actor: "carol",
		data: &events.MilestoneRecorded{Name: "impact_started", OccurredAt: time.Date(2025, 4, 1, 23, 58, 0, 0, time.UTC),
			Corrects: "0195f5c8-4d5e-7f60-8172-8d9e0f1a2b34", Reason: "The VPN logs show an earlier login from the same address."},
	},
	// A chained event: prevhash is the hash of the event before it
	// (additive, so still version 1).
	"io.hikeshi.incident.note_added.v1.chained.json": {
		id: "01959426-8dbe-7de4-88af-f8b4c17124bf", subject: inc42, time: "2025-03-14T10:15:09.502Z", actor: "erin",
		prevHash: "60dd84c5b213a9befafd8c3c4aa0da3702ef0d70aac36e4f4d1b664ab288de70",
		data:     &events.NoteAdded{Text: "Support has 230 tickets tagged checkout-502; macro with the status page link sent."},
	},
	"io.hikeshi.incident.declared.v1.slack.json": {
		id: "0195f5a1-7e2c-7d40-9b13-6c8e2f0a4d55", subject: "0195f5a1-7e0b-7c3e-8a9f-1d2c3b4a5e6f",
		time: "2025-04-02T09:40:12.118Z", actor: "person:carol@example.com", actorName: "Carol Diaz", via: "slack:U04CAROL22",
		data: &events.Declared{
			Title:              "Phishing wave against the finance team",
			Service:            "mail",
			Severity:           events.SEV2,
			DeclaredBy:         "U04CAROL22",
			DeclaredByIdentity: "person:carol@example.com",
			CaseNumber:         "INC-45",
			Confidential:       true,
			Codename:           "amber-heron",
		},
	},
	"io.hikeshi.incident.commander_assigned.v1.slack.json": {
		id: "0195f5a4-1b3d-7e50-8c24-7d9f3a1b5e66", subject: "0195f5a1-7e0b-7c3e-8a9f-1d2c3b4a5e6f",
		time: "2025-04-02T09:43:40.502Z", actor: "person:carol@example.com", actorName: "Carol Diaz", via: "slack:U04CAROL22",
		data: &events.CommanderAssigned{User: "U05DAVE333", UserIdentity: "person:dave@example.com"},
	},
	"io.hikeshi.incident.closed.v1.json": {
		id: closedEvt, subject: inc42, time: "2025-03-17T14:05:31.776Z", actor: "bob", correlation: closeCorr,
		data: &events.IncidentClosed{
			Resolution:     "Renewed the gateway certificate and restarted the card-processor pods; error rate back to baseline at 10:41 UTC.",
			LessonsLearned: "Certificate expiry had no alert; renewal moves to cert-manager with a 21-day warning.",
		},
	},
	"io.hikeshi.slack.channel_linked.v1.json": {
		id: "019593fa-6337-7104-baac-392e9d9bdfd9", subject: inc42, time: "2025-03-14T09:26:55.031Z",
		actor: "slack", causation: declared, correlation: corr42,
		data: ptr(events.NewLinked(events.TypeSlackChannelLinked, events.Linked{
			System: "slack", Ref: "C08HZ3K1Q7M", Name: "#inc-42-payments",
			URL: "https://acme.slack.com/archives/C08HZ3K1Q7M",
		})),
	},
	"io.hikeshi.jira.case_linked.v1.json": {
		id: "019593fa-6a6d-7f0e-95b4-4364fc8024c3", subject: inc42, time: "2025-03-14T09:26:56.877Z",
		actor: "jira", causation: declared, correlation: corr42,
		data: ptr(events.NewLinked(events.TypeJiraCaseLinked, events.Linked{
			System: "jira", Ref: "48213", Name: "OPS-318", URL: "https://acme.atlassian.net/browse/OPS-318",
		})),
	},
	"io.hikeshi.github.postmortem_opened.v1.json": {
		id: "0195a46c-9428-7f84-a4ae-3d0fd0704df6", subject: inc42, time: "2025-03-17T14:05:34.120Z",
		actor: "github", causation: closedEvt, correlation: closeCorr,
		data: ptr(events.NewLinked(events.TypeGitHubPostmortemOpened, events.Linked{
			System: "github", Ref: "1287", Name: "acme/postmortems#1287",
			URL: "https://github.com/acme/postmortems/pull/1287",
		})),
	},
}

func ptr[T any](v T) *T { return &v }

var goldenName = regexp.MustCompile(`^(.+)\.v([0-9]+)(?:\.([a-z0-9-]+))?\.json$`)

// TestGoldenFilesDecode decodes every golden file and compares every
// attribute and data field with the values above.
func TestGoldenFilesDecode(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		name := filepath.Base(path)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			want, ok := goldens[name]
			if !ok {
				t.Fatalf("no expected values for %s: add them to goldens", path)
			}
			m := goldenName.FindStringSubmatch(name)
			if m == nil {
				t.Fatalf("%s is not named <type>.v<version>[.<variant>].json", name)
			}
			typ, version := m[1], m[2]
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			env, err := events.Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			wantTime, err := time.Parse(time.RFC3339Nano, want.time)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct{ attr, got, want string }{
				{"specversion", env.SpecVersion, events.SpecVersion},
				{"id", env.ID, want.id},
				{"source", env.Source, events.DefaultSource},
				{"type", env.Type, typ},
				{"subject", env.Subject, want.subject},
				{"datacontenttype", env.DataContentType, events.ContentType},
				{"dataversion", strconv.Itoa(env.DataVersion), version},
				{"actor", env.Actor, want.actor},
				{"actorname", env.ActorName, want.actorName},
				{"via", env.Via, want.via},
				{"causationid", env.CausationID, want.causation},
				{"correlationid", env.CorrelationID, want.correlation},
				{"prevhash", env.PrevHash, want.prevHash},
			} {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.attr, c.got, c.want)
				}
			}
			if !env.Time.Equal(wantTime) {
				t.Errorf("time = %v, want %v", env.Time, wantTime)
			}
			if !events.ValidID(env.Subject) {
				t.Errorf("subject %q is not a valid incident id", env.Subject)
			}
			data, err := env.Decode()
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(data, want.data) {
				t.Errorf("Decode =\n%#v\nwant\n%#v", data, want.data)
			}
			if data.EventType() != typ {
				t.Errorf("EventType() = %q, want %q", data.EventType(), typ)
			}
		})
	}
	for name := range goldens {
		if !seen[name] {
			t.Errorf("testdata/%s is missing", name)
		}
	}
}

// TestEveryVersionHasAGoldenFile fails when a registered type, or any of its
// versions up to the current one, has no golden file.
func TestEveryVersionHasAGoldenFile(t *testing.T) {
	specs := events.Specs()
	if len(specs) == 0 {
		t.Fatal("no registered types")
	}
	for _, s := range specs {
		for v := 1; v <= s.Version; v++ {
			path := filepath.Join("testdata", fmt.Sprintf("%s.v%d.json", s.Type, v))
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s version %d has no golden file: %v", s.Type, v, err)
			}
		}
	}
}

// TestGoldenFilesCoverEveryField fails when a data field of a registered
// type is not set in any of its golden files, so a new field comes with an
// example of it.
func TestGoldenFilesCoverEveryField(t *testing.T) {
	covered := map[string]map[string]bool{}
	for name, g := range goldens {
		typ := goldenName.FindStringSubmatch(name)[1]
		if covered[typ] == nil {
			covered[typ] = map[string]bool{}
		}
		v := reflect.ValueOf(g.data).Elem()
		for i := range v.NumField() {
			if f := jsonName(v.Type().Field(i)); f != "" && !v.Field(i).IsZero() {
				covered[typ][f] = true
			}
		}
	}
	for _, s := range events.Specs() {
		for _, f := range dataFields(s) {
			if !covered[s.Type][f] {
				t.Errorf("%s: no golden file sets %q", s.Type, f)
			}
		}
	}
}

// dataFields lists the JSON names of the fields of a type's current struct.
func dataFields(s events.Spec) []string {
	t := reflect.TypeOf(s.New()).Elem()
	var out []string
	for i := range t.NumField() {
		if f := jsonName(t.Field(i)); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}
