package importrules

import (
	"slices"
	"strings"
	"testing"
)

// knownViolations are imports on their way out of the tree, each with
// what removes it. Empty it as they go; a listed import that no longer
// exists fails the test, so the list cannot outlive its entries.
var knownViolations = map[string]string{}

// The repository keeps its layout: see the package comment for the rules.
func TestRepositoryFollowsTheImportRules(t *testing.T) {
	g, err := Load("../..")
	if err != nil {
		t.Fatal(err)
	}
	modules, err := TableModules("../../services/cmd/hikeshi")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"slackbot", "jira", "github", "notify", "signals"} {
		if !slices.Contains(modules, Repo+"/services/"+m) {
			t.Fatalf("module table in services/cmd/hikeshi read as %v: %s is missing (has the table's shape changed?)", modules, m)
		}
	}
	for _, p := range []string{"events", "services/incident", "services/module", "adapters/natsjs", "services/slackbot"} {
		if _, ok := g[Repo+"/"+p]; !ok {
			t.Fatalf("package %s not loaded", p)
		}
	}
	for _, v := range Check(g, Rules(modules), knownViolations) {
		t.Error(v)
	}
	for edge, why := range knownViolations {
		from, to, _ := strings.Cut(edge, " -> ")
		if !slices.Contains(g[from], to) {
			t.Errorf("known violation %s is gone (%s): remove it from knownViolations", edge, why)
		}
	}
}

// Each rule catches what it forbids in a made-up graph, and lets the
// rest through.
func TestCheckFindsViolations(t *testing.T) {
	p := func(s string) string { return Repo + "/" + s }
	modules := []string{p("services/slackbot"), p("services/jira")}
	for _, c := range []struct {
		name  string
		graph Graph
		want  []string // Violation.String() prefixes; none: the graph is clean
	}{
		{"clean", Graph{
			p("events"):                     {"encoding/json"},
			p("services/incident"):          {"errors", p("events")},
			p("services/module"):            {"context", p("events"), p("services/incident"), p("services/config"), p("services/projection"), "github.com/nats-io/nats.go/jetstream"},
			p("services/slackbot"):          {p("services/module"), p("services/integration"), p("adapters/natsjs"), "github.com/slack-go/slack"},
			p("services/slackbot/internal"): {p("services/slackbot")},
			p("services/jira"):              {p("services/module")},
			p("services/integration"):       {p("adapters/natsjs")},
			p("adapters/natsjs"):            {p("events"), "github.com/nats-io/nats.go"},
			p("services/hub"):               {p("services/slackbot"), p("services/httpapi")},
		}, nil},
		{"events imports a library", Graph{p("events"): {"github.com/google/uuid"}},
			[]string{"events imports github.com/google/uuid: events imports only the standard library"}},
		{"events subpackage imports the services", Graph{p("events/schema"): {p("services/incident")}},
			[]string{"events/schema imports services/incident: events"}},
		{"incident imports an adapter", Graph{p("services/incident"): {p("adapters/natsjs")}},
			[]string{"services/incident imports adapters/natsjs: services/incident imports only"}},
		{"module contract imports the command handler", Graph{p("services/module"): {p("services/command")}},
			[]string{"services/module imports services/command: services/module imports only"}},
		{"module imports the hub", Graph{p("services/jira"): {p("services/hub")}},
			[]string{"services/jira imports services/hub: a module"}},
		{"module imports the API server", Graph{p("services/jira"): {p("services/httpapi")}},
			[]string{"services/jira imports services/httpapi: a module"}},
		{"module subpackage imports another module", Graph{p("services/slackbot/escalate"): {p("services/jira")}},
			[]string{"services/slackbot/escalate imports services/jira: a module"}},
		{"module reaches another module through a shared package", Graph{
			p("services/slackbot"):    {p("services/shared")},
			p("services/shared"):      {p("services/jira/client")},
			p("services/jira/client"): {},
		}, []string{"services/slackbot imports services/jira/client (through services/shared): a module"}},
		{"adapter imports the services", Graph{p("adapters/slack"): {p("services/sanitize")}},
			[]string{"adapters/slack imports services/sanitize: adapters never import services"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, v := range Check(c.graph, Rules(modules), nil) {
				got = append(got, v.String())
			}
			if len(got) != len(c.want) {
				t.Fatalf("violations %q, want %d like %q", got, len(c.want), c.want)
			}
			for i, w := range c.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("violation %q, want %q…", got[i], w)
				}
			}
		})
	}
}

// An ignored import is not followed, and only that one.
func TestCheckIgnores(t *testing.T) {
	p := func(s string) string { return Repo + "/" + s }
	g := Graph{p("services/slackbot"): {p("services/jira"), p("services/hub")}}
	got := Check(g, Rules([]string{p("services/slackbot"), p("services/jira")}), map[string]string{p("services/slackbot") + " -> " + p("services/jira"): "moving"})
	if len(got) != 1 || got[0].To != p("services/hub") {
		t.Fatalf("violations %v, want only the hub import", got)
	}
}
