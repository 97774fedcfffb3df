package github

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"

	githubclient "github.com/hikeshi/hikeshi/adapters/github"
	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/command"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/projection"
	"github.com/hikeshi/hikeshi/services/sanitize"
)

// DefaultTemplate drafts the postmortem; the sections to fill are marked.
const DefaultTemplate = `# {{.Marker}}Postmortem {{.CaseNumber}}: {{.Title}}

| | |
|---|---|
| Severity | {{.Severity}} (worst {{.WorstSeverity}}) |
| Service | {{.Service}} |
| Commander | {{or .Commander "-"}} |
| Declared | {{time .Declared}} by {{.DeclaredBy}} |
| Closed | {{if .Closed.IsZero}}not yet{{else}}{{time .Closed}}{{end}} |
| Duration | {{.Duration}} |
| Timeline | {{.TimelineURL}} |

## Summary

{{or .Summary "_To fill: what happened, in two or three sentences._"}}

## Impact

_To fill: who was affected, how, and for how long._

## Severity history

{{range .SeverityHistory}}- {{time .Time}}: {{if .From}}{{.From}} → {{end}}{{.To}} by {{.Actor}}{{if .Reason}}: {{.Reason}}{{end}}
{{end}}
## Timeline (UTC)

| Time | Who | What |
|---|---|---|
{{range .Timeline}}| {{time .Time}} | {{cell .Actor}} | {{cell .Text}} |
{{end}}
## Resolution

{{or .Resolution "_To fill._"}}

## Root cause

_To fill: the causes, not the culprits._

## Action items

- [ ] _To fill: owner, action, due date._

## Lessons learned

{{or .LessonsLearned "_To fill._"}}
`

func parseTemplate(text string) (*template.Template, error) {
	return template.New("postmortem").Option("missingkey=error").Funcs(template.FuncMap{
		"time": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
		"cell": func(s string) string {
			return strings.NewReplacer("|", `\|`, "\r\n", "<br>", "\n", "<br>").Replace(s)
		},
	}).Parse(text)
}

// Doc is what the template sees. For a confidential incident every field
// holds only what may leave the private channel.
type Doc struct {
	Marker, CaseNumber, Title, Service, DeclaredBy, Commander string
	Severity, WorstSeverity                                   events.Severity
	Summary, Resolution, LessonsLearned, TimelineURL          string
	Declared, Closed                                          time.Time
	Duration                                                  string
	Drill, Confidential                                       bool
	SeverityHistory                                           []SeverityStep
	Timeline                                                  []Entry
}

// SeverityStep is one severity the incident had.
type SeverityStep struct {
	Time          time.Time
	From, To      events.Severity
	Actor, Reason string
}

// Entry is one line of the timeline.
type Entry struct {
	Time        time.Time
	Actor, Text string
}

// Draft builds the document of incident st from its stored events.
func Draft(st incident.State, stored []events.Stored, publicURL string) Doc {
	d := Doc{
		Marker: integration.Marker(st), CaseNumber: st.CaseNumber, Title: sanitize.Line(st.DisplayTitle()),
		Service: integration.Service(st), DeclaredBy: st.DeclaredBy, Commander: st.Commander,
		Severity: st.Severity, WorstSeverity: st.Severity,
		Summary: integration.Text(st, st.Summary), Resolution: integration.Text(st, st.Resolution),
		LessonsLearned: integration.Text(st, st.LessonsLearned), TimelineURL: integration.TimelineURL(publicURL, st.ID),
		Declared: st.DeclaredAt, Drill: st.Drill, Confidential: st.Confidential,
	}
	if st.ClosedAt != nil {
		d.Closed = *st.ClosedAt
		d.Duration = st.ClosedAt.Sub(st.DeclaredAt).Round(time.Minute).String()
	} else {
		d.Duration = "open"
	}
	for _, e := range stored {
		data, err := e.Decode()
		if err != nil {
			continue // a type this binary does not know: not part of the draft
		}
		text := describe(st, data)
		if text == "" {
			continue
		}
		d.Timeline = append(d.Timeline, Entry{Time: e.Time, Actor: e.Actor, Text: text})
		switch v := data.(type) {
		case *events.Declared:
			d.SeverityHistory = append(d.SeverityHistory, SeverityStep{Time: e.Time, To: v.Severity, Actor: e.Actor})
			d.WorstSeverity = v.Severity
		case *events.SeverityChanged:
			d.SeverityHistory = append(d.SeverityHistory, SeverityStep{Time: e.Time, From: v.From, To: v.To, Actor: e.Actor, Reason: integration.Text(st, v.Reason)})
			if v.To.Rank() < d.WorstSeverity.Rank() {
				d.WorstSeverity = v.To
			}
		}
	}
	return d
}

// describe is one timeline line for an event, "" for events left out.
func describe(st incident.State, data events.Data) string {
	switch v := data.(type) {
	case *events.Declared:
		return fmt.Sprintf("Declared %s", v.Severity)
	case *events.SeverityChanged:
		return fmt.Sprintf("Severity %s → %s%s", v.From, v.To, suffix(integration.Text(st, v.Reason)))
	case *events.StatusUpdated:
		return fmt.Sprintf("Status %s → %s%s", v.From, v.To, suffix(integration.Text(st, v.Message)))
	case *events.CommanderAssigned:
		return "Commander: " + v.User
	case *events.NoteAdded:
		return "Note: " + integration.Text(st, v.Text)
	case *events.IncidentClosed:
		return "Closed" + suffix(integration.Text(st, v.Resolution))
	case *events.Linked:
		switch v.System {
		case "slack":
			return "Slack channel " + v.Name
		case "jira":
			return "JIRA case " + v.Name
		}
	}
	return ""
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

// Slug is a file-name form of a title.
func Slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 50 {
			break
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return "incident"
	}
	return out
}

// Branch and Path are where an incident's postmortem lives.
func Branch(st incident.State) string { return "postmortem/" + st.CaseNumber }

func Path(st incident.State) string {
	return fmt.Sprintf("postmortems/%04d/%s-%s.md", st.DeclaredAt.UTC().Year(), st.CaseNumber, Slug(st.DisplayTitle()))
}

// ErrSkipped: a confidential incident with no private repository.
var ErrSkipped = errors.New("confidential incident: no confidential_repo configured, postmortem skipped")

// PR is an opened postmortem pull request.
type PR struct {
	Repo   string `json:"repo"`
	Number int    `json:"number"`
	URL    string `json:"url"`
}

// Postmortem opens incident id's postmortem pull request, or finds the one
// opened before, and records it once.
func (p *Projector) Postmortem(ctx context.Context, id string) (PR, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.env.Commands.Get(ctx, id)
	if err != nil {
		return PR{}, err
	}
	repo, ok := p.repoFor(st)
	if !ok {
		return PR{}, ErrSkipped
	}
	pr, err := natsjs.Once(ctx, p.env.Effects, natsjs.EffectKey(Name, st.ID, "postmortem"), func(ctx context.Context) (PR, error) {
		return p.open(ctx, repo, st)
	})
	if err != nil {
		return pr, err
	}
	if _, linked := st.Links[Name]; !linked {
		link := events.Linked{System: Name, Ref: strconv.Itoa(pr.Number), Name: pr.Repo + "#" + strconv.Itoa(pr.Number), URL: pr.URL}
		_, err = p.env.Commands.Execute(ctx, st.ID, incident.RecordLink{Type: events.TypeGitHubPostmortemOpened, Linked: link},
			command.Meta{Actor: Name, Key: "github-postmortem:" + st.ID})
	}
	return pr, err
}

// open does each step only when a lookup says it is not done yet: the
// branch, the file on it, the pull request; reviewers and labels are
// idempotent on GitHub's side.
func (p *Projector) open(ctx context.Context, repo repoName, st incident.State) (PR, error) {
	stored, err := p.env.Events.Load(ctx, st.ID, 0)
	if err != nil {
		return PR{}, err
	}
	var doc bytes.Buffer
	if err := p.s.tmpl.Execute(&doc, Draft(st, stored, p.env.PublicURL)); err != nil {
		return PR{}, fmt.Errorf("github: postmortem template: %w", err)
	}
	base := p.s.BaseBranch
	if base == "" {
		if base, err = p.gh.DefaultBranch(ctx, repo); err != nil {
			return PR{}, integration.Refused(err)
		}
	}
	branch := Branch(st)
	if err := p.branch(ctx, repo, base, branch); err != nil {
		return PR{}, err
	}
	path := Path(st)
	if err := p.file(ctx, repo, branch, path, st.CaseNumber, []byte(sanitize.Text(doc.String()))); err != nil {
		return PR{}, err
	}
	pr, err := p.pull(ctx, repo, base, branch, st)
	if err != nil {
		return PR{}, err
	}
	if login := p.s.Reviewers[st.Commander]; login != "" {
		err := p.gh.RequestReview(ctx, repo, pr.Number, login)
		// 422: the login is the author or not a collaborator; the PR is
		// still worth having, so this is logged, not retried.
		if githubclient.IsStatus(err, http.StatusUnprocessableEntity) {
			p.env.Logger.Warn("github: reviewer not requested", "login", login, "pr", pr.URL, "err", err)
		} else if err != nil {
			return PR{}, integration.Refused(err)
		}
	}
	if len(p.s.Labels) > 0 {
		if err := p.gh.AddLabels(ctx, repo, pr.Number, p.s.Labels); err != nil {
			return PR{}, integration.Refused(err)
		}
	}
	return PR{Repo: repo.String(), Number: pr.Number, URL: pr.URL}, nil
}

func (p *Projector) branch(ctx context.Context, repo repoName, base, branch string) error {
	exists := func() (bool, error) {
		_, ok, err := p.gh.Branch(ctx, repo, branch)
		return ok, err
	}
	if ok, err := exists(); err != nil || ok {
		return integration.Refused(err)
	}
	sha, ok, err := p.gh.Branch(ctx, repo, base)
	if err == nil && !ok {
		err = fmt.Errorf("github: base branch %s of %s not found; set github.base_branch", base, repo)
		return fmt.Errorf("%w: %w", projection.ErrPermanent, err)
	}
	if err != nil {
		return integration.Refused(err)
	}
	return settled(p.gh.CreateBranch(ctx, repo, branch, sha), exists)
}

// file writes the drafted postmortem at path on branch unless it is there.
func (p *Projector) file(ctx context.Context, repo repoName, branch, path, caseNumber string, content []byte) error {
	exists := func() (bool, error) { return p.gh.FileExists(ctx, repo, branch, path) }
	if ok, err := exists(); err != nil || ok {
		return integration.Refused(err)
	}
	return settled(p.gh.CreateFile(ctx, repo, branch, path, "Postmortem draft for "+caseNumber, content), exists)
}

// settled judges a create's answer. GitHub answers 422 both when the thing
// was created meanwhile (by an on-demand request, or a call whose answer
// was lost) and when the request is invalid: a second lookup tells which.
func settled(err error, exists func() (bool, error)) error {
	if githubclient.IsStatus(err, http.StatusUnprocessableEntity) {
		if ok, lerr := exists(); lerr != nil || ok {
			return integration.Refused(lerr)
		}
	}
	return integration.Refused(err)
}

func (p *Projector) pull(ctx context.Context, repo repoName, base, branch string, st incident.State) (githubclient.PR, error) {
	if pr, ok, err := p.gh.FindPR(ctx, repo, branch); err != nil || ok {
		return pr, integration.Refused(err)
	}
	body := fmt.Sprintf("Postmortem draft for %s, generated from the incident timeline (%s).\n\n"+
		"Fill in impact, root cause and action items, then ask for review.", st.CaseNumber, integration.TimelineURL(p.env.PublicURL, st.ID))
	pr, err := p.gh.CreatePR(ctx, repo, githubclient.NewPR{
		Title: sanitize.Line(fmt.Sprintf("%sPostmortem %s: %s", integration.Marker(st), st.CaseNumber, st.DisplayTitle())),
		Head:  branch, Base: base, Body: body,
	})
	if githubclient.IsStatus(err, http.StatusUnprocessableEntity) { // "A pull request already exists"
		if pr, ok, ferr := p.gh.FindPR(ctx, repo, branch); ferr != nil || ok {
			return pr, integration.Refused(ferr)
		}
	}
	return pr, integration.Refused(err)
}
