package jira_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/jiratest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/jira"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/nats-io/nats.go/jetstream"
)

const token = "jira-test-token"

func setup(t *testing.T, extra string) (*integrationtest.Hub, *jiratest.Server, *jira.Projector) {
	t.Helper()
	t.Setenv("HIKESHI_TEST_JIRA_TOKEN", token)
	fake := jiratest.New(t, "Bearer "+token)
	h := integrationtest.New(t, fmt.Sprintf("jira:\n  base_url: %s\n  token_env: HIKESHI_TEST_JIRA_TOKEN\n  project: OPS\n%s", fake.URL, extra))
	cfg, auth, err := jira.Load(h.Env.Config)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jira.New(cfg, auth, h.Env)
	if err != nil {
		t.Fatal(err)
	}
	return h, fake, p
}

// lifecycle drives an incident from declared to closed; after each command
// it calls step.
func lifecycle(t *testing.T, h *integrationtest.Hub, d incident.Declare, step func()) incident.State {
	t.Helper()
	st := h.Declare(t, d)
	step()
	for _, c := range []incident.Command{
		incident.ChangeSeverity{Severity: "SEV1", Reason: "checkout fully down"},
		incident.AssignCommander{User: "bob"},
		incident.UpdateStatus{Status: "identified", Message: "bad deploy of the payment gateway"},
		incident.AddNote{Text: "rolled back to v41"},
		incident.UpdateStatus{Status: "resolved", Message: "error rate back to normal"},
		incident.Close{Resolution: "rollback", LessonsLearned: "canary the gateway"},
	} {
		h.Do(t, st.ID, c)
		step()
	}
	return st
}

// checkOneCase asserts what the remote holds after a full lifecycle,
// however many times the projector ran.
func checkOneCase(t *testing.T, h *integrationtest.Hub, fake *jiratest.Server, st incident.State, wantComments int) fakeIssue {
	t.Helper()
	issues, _ := fake.Snapshot()
	if len(issues) != 1 {
		t.Fatalf("%d issues, want exactly 1: %+v", len(issues), issues)
	}
	is := issues[0]
	if len(is.Comments) != wantComments {
		var bodies []string
		for _, c := range is.Comments {
			bodies = append(bodies, c.Body)
		}
		t.Fatalf("%d comments, want %d:\n%s", len(is.Comments), wantComments, strings.Join(bodies, "\n---\n"))
	}
	if is.Transitions != 1 || is.Category != "done" {
		t.Fatalf("transitions %d, status %s/%s; want one transition to done", is.Transitions, is.Status, is.Category)
	}
	if n := h.Count(t, st.ID, events.TypeJiraCaseLinked); n != 1 {
		t.Fatalf("%d case_linked events, want 1", n)
	}
	return is
}

type fakeIssue = jiratest.Issue

func TestCaseFollowsTheIncident(t *testing.T) {
	h, fake, p := setup(t, "  labels: [payments-team]\n")
	stop := h.Run(t, []projection.Projector{{Durable: jira.Name, Handle: p.Handle}})
	defer stop()
	st := lifecycle(t, h, incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2", Summary: "12% of authorisations fail"}, func() {})
	integrationtest.Eventually(t, "the case to be done", func() bool {
		issues, _ := fake.Snapshot()
		return len(issues) == 1 && issues[0].Category == "done"
	})
	is := checkOneCase(t, h, fake, st, 6)
	if is.Summary != "[SEV1] Card payments failing" {
		t.Errorf("summary %q", is.Summary)
	}
	if is.Priority != "Highest" {
		t.Errorf("priority %q after SEV1, want Highest", is.Priority)
	}
	for _, want := range []string{"INC-1", "12% of authorisations fail", "https://hikeshi.example.test/incidents/" + st.ID} {
		if !strings.Contains(is.Description, want) {
			t.Errorf("description lacks %q:\n%s", want, is.Description)
		}
	}
	if strings.Join(is.Labels, ",") != "hikeshi,hikeshi-"+st.ID+",payments-team" {
		t.Errorf("labels %v", is.Labels)
	}
	for i, want := range []string{"SEV2 to SEV1", "commander: bob", "bad deploy", "rolled back to v41", "back to normal", "rollback"} {
		if !strings.Contains(is.Comments[i].Body, want) {
			t.Errorf("comment %d lacks %q: %s", i, want, is.Comments[i].Body)
		}
	}
	if !strings.Contains(is.Comments[5].Body, "canary the gateway") {
		t.Errorf("closing comment lacks the lessons: %s", is.Comments[5].Body)
	}
	var linked *events.Linked
	for _, e := range h.Events(t, st.ID) {
		if e.Type == events.TypeJiraCaseLinked {
			d, _ := e.Decode()
			linked = d.(*events.Linked)
		}
	}
	if linked.Name != "OPS-1" || linked.URL != fake.URL+"/browse/OPS-1" || linked.Ref != is.ID {
		t.Errorf("link %+v", linked)
	}
}

// TestContract runs the contract every projector keeps on the JIRA
// projector: one case per incident, one comment per event, one transition
// to done, however often it is replayed or restarted, with or without its
// ledger; a 400 from JIRA dead-letters the event.
func TestContract(t *testing.T) {
	integrationtest.TestProjector(t, integrationtest.ProjectorCase{
		Lives: []integrationtest.Life{
			integrationtest.LifeOf(integrationtest.Ordinary),
			integrationtest.LifeOf(integrationtest.Confidential),
			integrationtest.LifeOf(integrationtest.Drill),
		},
		World: func(t *testing.T) *integrationtest.World {
			h, fake, _ := setup(t, "")
			cfg, auth, err := jira.Load(h.Env.Config)
			if err != nil {
				t.Fatal(err)
			}
			return &integrationtest.World{
				Hub: h,
				Projector: func(t testing.TB) projection.Projector {
					p, err := jira.New(cfg, auth, h.Env)
					if err != nil {
						t.Fatal(err)
					}
					return projection.Projector{Durable: jira.Name, Handle: p.Handle}
				},
				Effects: func(testing.TB) []string { return caseEffects(h, fake) },
				Refuse:  func(testing.TB) { fake.Add("", http.StatusBadRequest, "") },
			}
		},
	})
}

// caseEffects is what the fake JIRA holds, comparable across hubs.
func caseEffects(h *integrationtest.Hub, fake *jiratest.Server) []string {
	issues, _ := fake.Snapshot()
	var out []string
	for _, is := range issues {
		out = append(out, h.Mask(fmt.Sprintf("case %s %q priority %s, %s/%s after %d transitions, labels %v:\n%s",
			is.Key, is.Summary, is.Priority, is.Status, is.Category, is.Transitions, is.Labels, is.Description)))
		for _, c := range is.Comments {
			out = append(out, h.Mask("comment on "+is.Key+": "+c.Body))
		}
		for _, a := range is.Attachments {
			out = append(out, "attachment on "+is.Key+": "+a.Name)
		}
	}
	return out
}

func TestRateLimitsAndOutagesDelayButLoseNothing(t *testing.T) {
	h, fake, p := setup(t, "")
	fake.Add("POST /rest/api/2/issue", http.StatusTooManyRequests, "1")
	fake.Add("/comment", http.StatusServiceUnavailable, "")
	fake.Add("/transitions", http.StatusBadGateway, "")
	var st incident.State
	st = lifecycle(t, h, incident.Declare{Title: "Queue backlog", Service: "jobs", Severity: "SEV4"}, func() {})
	h.Replay(t, st.ID, p.Handle)
	checkOneCase(t, h, fake, st, 6)
	_, calls := fake.Snapshot()
	creates := 0
	for _, c := range calls {
		if c.Method == http.MethodPost && c.Path == "/rest/api/2/issue" {
			creates++
		}
	}
	if creates != 2 {
		t.Errorf("%d create calls, want 2 (one answered 429, then the retry)", creates)
	}
}

func TestConfidentialAndDrill(t *testing.T) {
	h, fake, p := setup(t, "")
	const title = "Credential stuffing against customer login"
	conf := lifecycle(t, h, incident.Declare{Title: title, Service: "identity", Severity: "SEV2",
		Summary: "rotating residential IPs", Confidential: true}, func() {})
	drill := h.Declare(t, incident.Declare{Title: "Game day: search zone loss", Service: "search", Severity: "SEV3", Drill: true})
	h.Replay(t, conf.ID, p.Handle)
	h.Replay(t, drill.ID, p.Handle)
	traffic := fake.Traffic()
	for _, secret := range []string{title, "identity", "rotating residential IPs", "checkout fully down", "bad deploy",
		"rolled back to v41", "error rate back to normal", "rollback", "canary the gateway"} {
		if strings.Contains(traffic, secret) {
			t.Errorf("JIRA traffic contains %q", secret)
		}
	}
	issues, _ := fake.Snapshot()
	if len(issues) != 2 {
		t.Fatalf("%d issues", len(issues))
	}
	if want := "[SEV1] " + conf.Codename; issues[0].Summary != want {
		t.Errorf("confidential summary %q, want %q", issues[0].Summary, want)
	}
	if !strings.Contains(issues[0].Comments[3].Body, integration.Withheld) {
		t.Errorf("confidential note not withheld: %s", issues[0].Comments[3].Body)
	}
	if issues[1].Summary != "[DRILL] [SEV3] Game day: search zone loss" || !strings.Contains(strings.Join(issues[1].Labels, ","), "hikeshi-drill") {
		t.Errorf("drill case %q %v", issues[1].Summary, issues[1].Labels)
	}
}

func TestCloudBasicAuth(t *testing.T) {
	t.Setenv("HIKESHI_TEST_JIRA_TOKEN", token)
	fake := jiratest.New(t, "Basic "+base64.StdEncoding.EncodeToString([]byte("ops@acme.test:"+token)))
	h := integrationtest.New(t, "jira:\n  base_url: "+fake.URL+"\n  email: ops@acme.test\n  token_env: HIKESHI_TEST_JIRA_TOKEN\n  project: OPS\n  priorities: {sev2: P1}\n")
	cfg, auth, err := jira.Load(h.Env.Config)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := jira.New(cfg, auth, h.Env)
	st := h.Declare(t, incident.Declare{Title: "API errors", Service: "api", Severity: "SEV2"})
	h.Replay(t, st.ID, p.Handle)
	issues, _ := fake.Snapshot()
	if len(issues) != 1 || issues[0].Priority != "P1" {
		t.Fatalf("issues %+v", issues)
	}
}

func TestDefinitiveRefusalIsPermanent(t *testing.T) {
	h, fake, p := setup(t, "  issue_type: Incident\n") // the fake project has no such type
	st := h.Declare(t, incident.Declare{Title: "API errors", Service: "api", Severity: "SEV2"})
	err := p.Handle(context.Background(), h.Events(t, st.ID)[0])
	if !errors.Is(err, projection.ErrPermanent) || !strings.Contains(err.Error(), "issuetype") {
		t.Fatalf("err = %v, want a permanent error naming issuetype", err)
	}
	if issues, _ := fake.Snapshot(); len(issues) != 0 {
		t.Fatalf("issues created: %+v", issues)
	}
}

func TestWrongTokenIsRetriedNotDropped(t *testing.T) {
	h, fake, p := setup(t, "")
	fake.Auth = "Bearer something-else"
	st := h.Declare(t, incident.Declare{Title: "API errors", Service: "api", Severity: "SEV2"})
	err := p.Handle(context.Background(), h.Events(t, st.ID)[0])
	if err == nil || errors.Is(err, projection.ErrPermanent) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Setenv("HIKESHI_TEST_JIRA_TOKEN", token)
	for name, section := range map[string]string{
		"no url":       "  token_env: HIKESHI_TEST_JIRA_TOKEN\n  project: OPS\n",
		"no project":   "  base_url: https://acme.atlassian.net\n  token_env: HIKESHI_TEST_JIRA_TOKEN\n",
		"no token":     "  base_url: https://acme.atlassian.net\n  token_env: HIKESHI_TEST_JIRA_MISSING\n  project: OPS\n",
		"bad severity": "  base_url: https://acme.atlassian.net\n  token_env: HIKESHI_TEST_JIRA_TOKEN\n  project: OPS\n  priorities: {SEV9: x}\n",
		"unknown key":  "  base_url: https://acme.atlassian.net\n  token_env: HIKESHI_TEST_JIRA_TOKEN\n  project: OPS\n  projet: OPS\n",
	} {
		f, err := config.Parse("hikeshi.yaml", []byte("jira:\n"+section))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := jira.Load(f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestArchiveAttached: the Slack export arrives after close; it is attached
// once, even when the ledger is lost, and never for a confidential incident.
func TestArchiveAttached(t *testing.T) {
	h, fake, p := setup(t, "")
	ctx := context.Background()
	store, err := h.Bus.JS.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: jira.ArchivesBucket})
	if err != nil {
		t.Fatal(err)
	}
	export := []byte(`{"messages":[{"user":"U1","text":"rolling back"}]}`)
	if _, err := store.PutBytes(ctx, "exports/inc-1.json", export); err != nil {
		t.Fatal(err)
	}
	archived := func(id string) {
		if _, err := h.Env.Commands.Execute(ctx, id, incident.RecordFact{Data: &events.ConversationArchived{
			ChannelID: "C1", ChannelName: "inc-1-payments", Object: "exports/inc-1.json", Messages: 1, Bytes: int64(len(export)),
		}}, command.Meta{Actor: "slack", Key: "archive:" + id}); err != nil {
			t.Fatal(err)
		}
	}
	st := lifecycle(t, h, incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2"}, func() {})
	archived(st.ID)
	conf := h.Declare(t, incident.Declare{Title: "Secret thing", Service: "identity", Severity: "SEV2", Confidential: true})
	archived(conf.ID)
	h.Replay(t, st.ID, p.Handle)
	h.Replay(t, conf.ID, p.Handle)
	h.ForgetEffects(t)
	h.Replay(t, st.ID, p.Handle)
	issues, _ := fake.Snapshot()
	if len(issues) != 2 || len(issues[0].Attachments) != 1 || len(issues[1].Attachments) != 0 {
		t.Fatalf("attachments: %d issues, %+v", len(issues), issues)
	}
	a := issues[0].Attachments[0]
	if a.Name != "INC-1-slack-inc-1-payments.json" || string(a.Content) != string(export) {
		t.Fatalf("attachment %s: %s", a.Name, a.Content)
	}
}

// TestDoneTransitionByName: the configured transition is found by name,
// whatever its id and case; a workflow without it dead-letters the close
// with the names it does offer; a case a person already closed is left be.
func TestDoneTransitionByName(t *testing.T) {
	h, fake, p := setup(t, "  done_transition: resolve incident\n")
	fake.Done = "Resolve Incident"
	st := lifecycle(t, h, incident.Declare{Title: "API errors", Service: "api", Severity: "SEV2"}, func() {})
	h.Replay(t, st.ID, p.Handle)
	checkOneCase(t, h, fake, st, 6)

	fake.Done = "Close"
	other := h.Declare(t, incident.Declare{Title: "Queue backlog", Service: "jobs", Severity: "SEV3"})
	h.Do(t, other.ID, incident.UpdateStatus{Status: "resolved"})
	h.Do(t, other.ID, incident.Close{Resolution: "drained"})
	stored := h.Events(t, other.ID)
	if err := p.Handle(context.Background(), stored[0]); err != nil {
		t.Fatal(err)
	}
	err := p.Handle(context.Background(), stored[len(stored)-1])
	if !errors.Is(err, projection.ErrPermanent) || !strings.Contains(err.Error(), `no transition named "resolve incident"`) ||
		!strings.Contains(err.Error(), "Close") {
		t.Fatalf("err = %v, want a permanent error naming the wanted and the offered transitions", err)
	}

	third := h.Declare(t, incident.Declare{Title: "Cache misses", Service: "cdn", Severity: "SEV4"})
	h.Replay(t, third.ID, p.Handle)
	fake.Resolve("OPS-3")
	h.Do(t, third.ID, incident.UpdateStatus{Status: "resolved"})
	h.Do(t, third.ID, incident.Close{Resolution: "warmed"})
	stored = h.Events(t, third.ID)
	if err := p.Handle(context.Background(), stored[len(stored)-1]); err != nil {
		t.Fatalf("closing a case already done: %v", err)
	}
	issues, _ := fake.Snapshot()
	if is := issues[2]; is.Transitions != 0 || is.Category != "done" {
		t.Fatalf("case closed by hand: %d transitions, %s", is.Transitions, is.Category)
	}
}

// TestControlCharactersNeverReachTheCase: JIRA refuses a summary with a
// line break, which once left such an incident without a case; escapes in
// notes never reach a comment.
func TestControlCharactersNeverReachTheCase(t *testing.T) {
	h, fake, p := setup(t, "")
	stop := h.Run(t, []projection.Projector{{Durable: jira.Name, Handle: p.Handle}})
	defer stop()
	st := h.Declare(t, incident.Declare{Title: integrationtest.HostileTitle, Service: "storage", Severity: "SEV2",
		Summary: "first seen on\r\n" + integrationtest.HostileNote})
	h.Do(t, st.ID, incident.AddNote{Text: integrationtest.HostileNote})
	h.Do(t, st.ID, incident.ChangeSeverity{Severity: "SEV1", Reason: integrationtest.HostileNote})
	integrationtest.Eventually(t, "the case with two comments", func() bool {
		issues, _ := fake.Snapshot()
		return len(issues) == 1 && len(issues[0].Comments) == 2
	})
	issues, _ := fake.Snapshot()
	is := issues[0]
	if is.Summary != "[SEV1] "+integrationtest.SafeTitle {
		t.Errorf("summary %q, want %q", is.Summary, "[SEV1] "+integrationtest.SafeTitle)
	}
	integrationtest.CheckClean(t, "description", is.Description, true)
	if !strings.Contains(is.Description, "first seen on\n"+integrationtest.SafeNote) {
		t.Errorf("description lost the summary's text:\n%s", is.Description)
	}
	for i, c := range is.Comments {
		integrationtest.CheckClean(t, fmt.Sprintf("comment %d", i), c.Body, true)
		if !strings.Contains(c.Body, integrationtest.SafeNote) {
			t.Errorf("comment %d lost the note's text: %q", i, c.Body)
		}
	}
	if d, _ := h.Events(t, st.ID)[0].Decode(); d.(*events.Declared).Title != integrationtest.HostileTitle {
		t.Errorf("the declaration is not stored verbatim: %+v", d)
	}
}

// TestLostCreateAnswerMakesOneCase: JIRA created the case but its answer
// was lost (a 5xx after the create, a dropped connection after it, and
// the same with the search index trailing the write). The projector, run
// as in the hub, searches by the label before it creates again: one case,
// linked once, every comment once.
func TestLostCreateAnswerMakesOneCase(t *testing.T) {
	integrationtest.ShortSearchLag(t)
	for _, tc := range []struct {
		name  string
		lag   int
		fault func(*jiratest.Server)
	}{
		{"500 after the create", 0, func(f *jiratest.Server) {
			f.AddAfter("POST /rest/api/2/issue", http.StatusInternalServerError)
		}},
		{"dropped after the create", 0, func(f *jiratest.Server) { f.AddDrop("POST /rest/api/2/issue", true) }},
		{"502 after the create, index trailing", 2, func(f *jiratest.Server) { f.AddAfter("POST /rest/api/2/issue", http.StatusBadGateway) }},
		{"dropped before the create", 0, func(f *jiratest.Server) { f.AddDrop("POST /rest/api/2/issue", false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, fake, p := setup(t, "")
			fake.SearchLag = tc.lag
			tc.fault(fake)
			stop := h.Run(t, []projection.Projector{{Durable: jira.Name, Handle: p.Handle}})
			defer stop()
			st := h.Declare(t, incident.Declare{Title: "Checkout errors", Service: "payments", Severity: "SEV2", Summary: "5% of orders fail"})
			h.Do(t, st.ID, incident.AddNote{Text: "gateway timeouts"})
			integrationtest.Eventually(t, "the note on the case", func() bool {
				issues, _ := fake.Snapshot()
				return len(issues) > 0 && len(issues[len(issues)-1].Comments) == 1
			})
			issues, _ := fake.Snapshot()
			if len(issues) != 1 {
				t.Fatalf("%d cases, want 1: %+v", len(issues), issues)
			}
			if !strings.Contains(issues[0].Description, "5% of orders fail") {
				t.Errorf("description %q", issues[0].Description)
			}
			if n := h.Count(t, st.ID, events.TypeJiraCaseLinked); n != 1 {
				t.Errorf("%d case_linked events", n)
			}
		})
	}
}

// TestCaseRefusedThenCreatedByALaterEvent: JIRA refused the create for
// good at the declaration (the event is dead-lettered); the next event
// creates the case, and it carries the declaration's full description,
// not only the later event.
func TestCaseRefusedThenCreatedByALaterEvent(t *testing.T) {
	h, fake, p := setup(t, "")
	fake.Add("POST /rest/api/2/issue", http.StatusBadRequest, "")
	stop := h.Run(t, []projection.Projector{{Durable: jira.Name, Handle: p.Handle}})
	defer stop()
	st := h.Declare(t, incident.Declare{Title: "Checkout errors", Service: "payments", Severity: "SEV2", Summary: "5% of orders fail", DeclaredBy: "alice"})
	integrationtest.Eventually(t, "the refused create", func() bool {
		_, calls := fake.Snapshot()
		return len(calls) >= 2
	})
	h.Do(t, st.ID, incident.AddNote{Text: "gateway timeouts"})
	integrationtest.Eventually(t, "the case with the note", func() bool {
		issues, _ := fake.Snapshot()
		return len(issues) == 1 && len(issues[0].Comments) == 1
	})
	issues, _ := fake.Snapshot()
	for _, want := range []string{"INC-1", "declared by alice", "payments", "5% of orders fail", "/incidents/" + st.ID} {
		if !strings.Contains(issues[0].Description, want) {
			t.Errorf("description lacks %q:\n%s", want, issues[0].Description)
		}
	}
	if issues[0].Summary != "[SEV2] Checkout errors" || !strings.Contains(issues[0].Comments[0].Body, "gateway timeouts") {
		t.Errorf("case %+v", issues[0])
	}
}
