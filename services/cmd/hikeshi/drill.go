package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/sanitize"
	"gopkg.in/yaml.v3"
)

const drillUsage = "replay ID|--from-scenario FILE [--speed 60] [--run-id R] [--from-step N]"

// replayTitle is a replayed incident's title: where it comes from, then
// its own title, within the hub's limit. (Integrations add their own
// [DRILL] marker to every drill's title.)
func replayTitle(caseNumber, title string) string {
	return truncate("Replay of "+caseNumber+": "+title, incident.MaxTitle)
}

// drillStep is one command of a drill, at an offset from its declaration.
type drillStep struct {
	at   time.Duration
	what string // a short description for the progress line
	path string // under the incident: /severity, /status, …
	body map[string]any
}

// drillPlan is a drill to run: its declaration, then its steps in order.
type drillPlan struct {
	origin  string // what the run's idempotency keys derive from
	name    string // what the drill replays, for messages
	declare map[string]any
	steps   []drillStep
}

func drillCmd(ctx context.Context, args []string, w io.Writer) error {
	if len(args) == 0 || args[0] != "replay" {
		return fmt.Errorf("%w: the only drill command is replay", errUsage)
	}
	f := newFlags("drill", drillUsage)
	c := clientFlags(f)
	speed := f.Float64("speed", 60, "how many times faster than the original the drill runs (offsets are divided by it)")
	scenario := f.String("from-scenario", "", "YAML scenario file to run instead of a past incident")
	runID := f.String("run-id", "", "the run to retry or resume: its steps are not appended twice (default: a new run)")
	fromStep := f.Int("from-step", 1, "resume at this step (the declaration is always re-sent, and is not repeated)")
	pos, err := f.parse(args[1:])
	if err != nil {
		return err
	}
	if (len(pos) == 1) == (*scenario != "") || len(pos) > 1 {
		return fmt.Errorf("%w: give one incident to replay, or --from-scenario FILE", errUsage)
	}
	if *speed <= 0 {
		return fmt.Errorf("%w: --speed must be positive", errUsage)
	}
	var plan drillPlan
	if *scenario != "" {
		plan, err = scenarioPlan(*scenario)
	} else {
		plan, err = c.incidentPlan(ctx, pos[0])
	}
	if err != nil {
		return err
	}
	if *fromStep < 1 || *fromStep > len(plan.steps)+1 {
		return fmt.Errorf("%w: --from-step must be between 1 and %d (the drill has %d steps)", errUsage, len(plan.steps)+1, len(plan.steps))
	}
	if *runID == "" {
		*runID = newRunID()
	}
	r := &drillRun{c: c, plan: plan, speed: *speed, runID: *runID}
	return r.run(ctx, w, *fromStep)
}

func newRunID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// incidentPlan replays a closed incident: its declaration, severity,
// status, commander and note events at their offsets from the declaration.
func (c *client) incidentPlan(ctx context.Context, ref string) (drillPlan, error) {
	var src incidentView
	if err := c.do(ctx, http.MethodGet, incidentPath(ref), nil, &src); err != nil {
		return drillPlan{}, err
	}
	if src.Status != string(events.Closed) {
		return drillPlan{}, fmt.Errorf("%s is %s: only a closed incident is replayed as a drill (close it first, or write a scenario file)", src.CaseNumber, src.Status)
	}
	tl, err := c.timelineBetween(ctx, src.ID, 0, src.Version)
	if err != nil {
		return drillPlan{}, err
	}
	if len(tl) == 0 || tl[0].Type != events.TypeDeclared || tl[len(tl)-1].Seq < src.Version {
		return drillPlan{}, fmt.Errorf("the timeline of %s is not complete yet (the hub's projection is behind); try again in a moment", src.CaseNumber)
	}
	plan := drillPlan{origin: "incident:" + src.ID, name: src.CaseNumber}
	declared := tl[0]
	for _, e := range tl {
		var d map[string]any
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return drillPlan{}, fmt.Errorf("%s seq %d: %v", src.CaseNumber, e.Seq, err)
		}
		at := e.Time.Sub(declared.Time)
		switch e.Type {
		case events.TypeDeclared:
			plan.declare = map[string]any{"title": replayTitle(src.CaseNumber, str(d, "title")), "service": d["service"], "severity": d["severity"],
				"summary": d["summary"], "confidential": d["confidential"] == true, "drill": true}
		case events.TypeSeverityChanged:
			plan.add(at, "/severity", map[string]any{"severity": d["to"], "reason": d["reason"]})
		case events.TypeStatusUpdated:
			plan.add(at, "/status", map[string]any{"status": d["to"], "message": d["message"]})
		case events.TypeCommanderAssigned:
			plan.add(at, "/commander", map[string]any{"user": d["user"]})
		case events.TypeNoteAdded:
			plan.add(at, "/notes", map[string]any{"text": d["text"]})
		}
	}
	return plan, nil
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// add appends a step, leaving out empty fields.
func (p *drillPlan) add(at time.Duration, path string, body map[string]any) {
	for k, v := range body {
		if v == nil || v == "" {
			delete(body, k)
		}
	}
	var what []string
	for _, k := range []string{"severity", "status", "user", "text"} {
		if v, ok := body[k].(string); ok {
			what = append(what, v)
		}
	}
	p.steps = append(p.steps, drillStep{at: max(at, 0), path: path, body: body,
		what: strings.TrimPrefix(path, "/") + " " + strings.Join(what, " ")})
}

// scenario is a drill file: an incident to declare and its steps.
type scenario struct {
	Title        string         `yaml:"title"`
	Service      string         `yaml:"service"`
	Severity     string         `yaml:"severity"`
	Summary      string         `yaml:"summary"`
	Confidential bool           `yaml:"confidential"`
	Steps        []scenarioStep `yaml:"steps"`
}

// scenarioStep is one command of a scenario, at an offset from the
// declaration.
type scenarioStep struct {
	At        time.Duration `yaml:"at"`
	Severity  string        `yaml:"severity"`
	Reason    string        `yaml:"reason"`
	Status    string        `yaml:"status"`
	Message   string        `yaml:"message"`
	Commander string        `yaml:"commander"`
	Note      string        `yaml:"note"`
}

// scenarioPlan reads a scenario file; every step does exactly one of
// severity, status, commander or note.
func scenarioPlan(path string) (drillPlan, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return drillPlan{}, err
	}
	var s scenario
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return drillPlan{}, fmt.Errorf("%s: %v", path, err)
	}
	if s.Title == "" || s.Service == "" || s.Severity == "" {
		return drillPlan{}, fmt.Errorf("%s: title, service and severity are required", path)
	}
	sum := sha256.Sum256(raw)
	plan := drillPlan{origin: "scenario:" + hex.EncodeToString(sum[:12]), name: path,
		declare: map[string]any{"title": s.Title, "service": s.Service, "severity": s.Severity,
			"summary": s.Summary, "confidential": s.Confidential, "drill": true}}
	slices.SortStableFunc(s.Steps, func(a, b scenarioStep) int { return cmp.Compare(a.At, b.At) })
	for i, st := range s.Steps {
		var n int
		for _, v := range []string{st.Severity, st.Status, st.Commander, st.Note} {
			if v != "" {
				n++
			}
		}
		if n != 1 || st.At < 0 {
			return drillPlan{}, fmt.Errorf("%s: step %d (at %s): give exactly one of severity, status, commander or note, at an offset of 0 or more", path, i+1, st.At)
		}
		switch {
		case st.Severity != "":
			plan.add(st.At, "/severity", map[string]any{"severity": st.Severity, "reason": st.Reason})
		case st.Status != "":
			plan.add(st.At, "/status", map[string]any{"status": st.Status, "message": st.Message})
		case st.Commander != "":
			plan.add(st.At, "/commander", map[string]any{"user": st.Commander})
		default:
			plan.add(st.At, "/notes", map[string]any{"text": st.Note})
		}
	}
	return plan, nil
}

// drillRun sends a plan's commands through the API on an accelerated
// clock. Each request carries an idempotency key derived from the plan's
// origin, the run id and the step, so a retried run appends nothing twice.
type drillRun struct {
	c     *client
	plan  drillPlan
	speed float64
	runID string
}

func (r *drillRun) key(step int) string {
	return fmt.Sprintf("drill:%s:%s:%d", r.plan.origin, r.runID, step)
}

// post sends one step. A step started is finished even when the run is
// interrupted meanwhile: the interruption takes effect between steps.
func (r *drillRun) post(ctx context.Context, path string, step int, body map[string]any) (incidentView, error) {
	var v incidentView
	err := r.c.send(context.WithoutCancel(ctx), http.MethodPost, path, []string{"Idempotency-Key", r.key(step)}, body, &v)
	return v, err
}

func (r *drillRun) run(ctx context.Context, w io.Writer, from int) error {
	fmt.Fprintf(w, "drill run %s of %s: %d steps at %gx (retry or resume with --run-id %s)\n", r.runID, r.plan.name, len(r.plan.steps), r.speed, r.runID)
	drill, err := r.post(ctx, "/api/v1/incidents", 0, r.plan.declare)
	if err != nil {
		return fmt.Errorf("declaring the drill: %w", err)
	}
	fmt.Fprintf(w, "drill %s declared: %s\n", drill.CaseNumber, drill.ID)
	// The clock starts at the declaration; a resumed run starts it as if
	// the skipped steps had just been run.
	start := time.Now()
	if from > 1 {
		start = start.Add(-r.scaled(r.plan.steps[from-2].at))
	}
	bar := &stepBar{w: os.Stderr, total: len(r.plan.steps)}
	defer bar.done()
	for i := from - 1; i < len(r.plan.steps); i++ {
		st := r.plan.steps[i]
		bar.draw(i, st.what)
		if err := sleepUntil(ctx, start.Add(r.scaled(st.at))); err != nil {
			return r.stopped(drill, i)
		}
		if _, err := r.post(ctx, incidentPath(drill.ID, st.path), i+1, st.body); err != nil {
			return fmt.Errorf("step %d of %d (%s) failed: %w; the drill %s stays open: resume with %s", i+1, len(r.plan.steps), st.what, err, drill.CaseNumber, r.resumeCommand(i+1))
		}
		if ctx.Err() != nil && i+1 < len(r.plan.steps) {
			return r.stopped(drill, i+1)
		}
	}
	bar.draw(len(r.plan.steps), "done")
	bar.done()
	fmt.Fprintf(w, "drill %s replayed %d steps; it stays open for the exercise (close it with: hikeshi close %s --resolution ...)\n", drill.CaseNumber, len(r.plan.steps), drill.CaseNumber)
	return nil
}

// stopped reports an interrupted run after its done steps.
func (r *drillRun) stopped(drill incidentView, done int) error {
	return fmt.Errorf("stopped after step %d of %d; the drill %s stays open: resume with %s", done, len(r.plan.steps), drill.CaseNumber, r.resumeCommand(done+1))
}

func (r *drillRun) resumeCommand(step int) string {
	what := r.plan.name
	if strings.HasPrefix(r.plan.origin, "scenario:") {
		what = "--from-scenario " + r.plan.name
	}
	return fmt.Sprintf("hikeshi drill replay %s --speed %g --run-id %s --from-step %d", what, r.speed, r.runID, step)
}

func (r *drillRun) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) / r.speed)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// stepBar draws the drill's progress on one terminal line.
type stepBar struct {
	w     io.Writer
	total int
	drawn bool
}

func (b *stepBar) draw(done int, what string) {
	const width = 30
	n := width
	if b.total > 0 {
		n = done * width / b.total
	}
	fmt.Fprintf(b.w, "\r\033[K[%s%s] step %d/%d  %s", strings.Repeat("=", n), strings.Repeat(" ", width-n), done, b.total, sanitize.Line(truncate(what, 40)))
	b.drawn = true
}

func (b *stepBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
