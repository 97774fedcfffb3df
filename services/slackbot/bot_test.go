package slackbot

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/adapters/slacktest"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
)

type rig struct {
	t     testing.TB
	h     *integrationtest.Hub
	slack *slacktest.Server
	cfg   Config
	bot   *Bot
	stop  func()
	clock *clock
	sleep func(context.Context, time.Duration) error
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const secret = "test-signing-secret"

func newRig(t testing.TB, extra string) *rig {
	t.Helper()
	return newRigWith(t, extra, func(context.Context, time.Duration) error { return nil })
}

func newRigWith(t testing.TB, extra string, sleep func(context.Context, time.Duration) error) *rig {
	t.Helper()
	r := newStoppedRig(t, extra, sleep)
	r.start()
	return r
}

// newStoppedRig is a rig whose bot does not run yet.
func newStoppedRig(t testing.TB, extra string, sleep func(context.Context, time.Duration) error) *rig {
	t.Helper()
	fake := slacktest.New()
	t.Cleanup(fake.Close)
	fake.UserGroup("SPAYTEAM1", "UPAY00001", "UPAY00002")
	yaml := fmt.Sprintf(`slack:
  api_url: %s
  workspace_url: https://hikeshi-test.slack.com
  post_interval: 1ms
  services:
    payments:
      members: [SPAYTEAM1, UPAYLEAD1]
  security_team: [USEC00001]
  executives: [UEXEC0001]
  executives_severity: SEV1
  announce_channels: [CANNOUNCE1]
  security_channel: CSECURITY1
  archive_on_close: true
%s`, fake.APIURL(), extra)
	h := integrationtest.New(t, yaml)
	cfg, err := Load(h.Env.Config)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, h: h, slack: fake, cfg: cfg, clock: &clock{now: time.Now()}, sleep: sleep}
	r.ensureChannels("CANNOUNCE1", "CSECURITY1")
	return r
}

// ensureChannels creates the configured channels under their ids.
func (r *rig) ensureChannels(ids ...string) {
	for _, id := range ids {
		r.slack.PutChannel(slacktest.Channel{ID: id, Name: strings.ToLower(id)})
	}
}

// deps are what the rig's bots get.
func (r *rig) deps() Deps {
	return Deps{
		JS: r.h.Bus.JS, Commands: r.h.Env.Commands, Effects: r.h.Env.Effects,
		Token: "xoxb-test", SigningSecret: secret, AppToken: "xapp-1-test", PublicURL: "https://hikeshi.example.test",
		Logger: r.h.Env.Logger, Now: r.clock.Now,
		Sleep: r.sleep,
	}
}

func (r *rig) start() {
	b, err := New(context.Background(), r.cfg, r.deps())
	if err != nil {
		r.t.Fatal(err)
	}
	r.bot = b
	projectors := b.Parts().Projectors
	r.stop = r.h.Run(r.t, projectors)
	// Stopping a runner that has not subscribed yet fails the runner:
	// wait until every projector is bound to its consumer.
	for _, p := range projectors {
		stream := p.Stream
		if stream == "" {
			stream = events.IncidentStream
		}
		integrationtest.Eventually(r.t, p.Durable+" subscribed", func() bool {
			c, err := r.h.Bus.JS.PushConsumer(context.Background(), stream, p.Durable)
			if err != nil {
				return false
			}
			info, err := c.Info(context.Background())
			return err == nil && info.PushBound
		})
	}
}

func (r *rig) restart() {
	r.stop()
	r.start()
}

// settle waits until the projector has handled every event of incident id
// (the Slack facts it appends are the last events).
func (r *rig) waitFor(id, typ string, n int) {
	integrationtest.Eventually(r.t, fmt.Sprintf("%d × %s", n, typ), func() bool { return r.h.Count(r.t, id, typ) >= n })
}

func (r *rig) counts() map[string]int {
	out := map[string]int{}
	for _, c := range r.slack.Calls() {
		if c.Status == http.StatusOK && c.Error == "" {
			out[c.Method]++
		}
	}
	return out
}

// life drives one incident from declaration to close; after each step it
// waits for the projector and calls between(step).
func (r *rig) life(decl incident.Declare, between func(step string)) incident.State {
	t := r.t
	st := r.h.Declare(t, decl)
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	between("declared")
	steps := []struct {
		name string
		c    incident.Command
	}{
		{"severity", incident.ChangeSeverity{Severity: "SEV1", Reason: "every region"}},
		{"commander", incident.AssignCommander{User: "UCMDR0001"}},
		{"identified", incident.UpdateStatus{Status: "identified", Message: "certificate expired"}},
		{"note", incident.AddNote{Text: "support macro sent"}},
		{"resolved", incident.UpdateStatus{Status: "resolved", Message: "renewed"}},
	}
	for _, s := range steps {
		r.h.Do(t, st.ID, s.c)
		r.waitPosted(st.ID)
		between(s.name)
	}
	r.h.Do(t, st.ID, incident.Close{Resolution: "renewed the certificate", LessonsLearned: "alert on expiry"})
	r.waitFor(st.ID, events.TypeSlackConversationArchived, 1)
	integrationtest.Eventually(t, "channel archived", func() bool { return r.counts()["conversations.archive"] == 1 })
	between("closed")
	return st
}

// waitPosted waits until the projector has handled the incident's last
// event: its chat.update of the pinned summary (or note post) is recorded
// in the ledger.
func (r *rig) waitPosted(id string) {
	evs := r.h.Events(r.t, id)
	last := evs[len(evs)-1]
	integrationtest.Eventually(r.t, "projector handled "+last.Type, func() bool {
		ok, err := r.bot.effects.Get(context.Background(), key(last, "post"), nil)
		if err != nil || !ok {
			return false
		}
		if last.Type == events.TypeNoteAdded {
			return true
		}
		ok, err = r.bot.effects.Get(context.Background(), key(last, "summary"), nil)
		return err == nil && ok
	})
}

var expectedLife = map[string]int{
	"conversations.create":     1,
	"conversations.setPurpose": 1,
	"conversations.setTopic":   6, // declared, severity, commander, identified, resolved, closed
	"conversations.invite":     2, // at declaration; executives at SEV1
	"usergroups.users.list":    1,
	"pins.add":                 1,
	// kickoff, guidance, request, announcement; severity + its announcement;
	// commander; identified; note; resolved; closing summary
	"chat.postMessage":      11,
	"chat.update":           5,
	"conversations.history": 1,
	"conversations.archive": 1,
}

func TestIncidentLifeMakesExactlyTheExpectedCalls(t *testing.T) {
	r := newRig(t, "")
	st := r.life(incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2", DeclaredBy: "UALICE001"}, func(string) {})
	if got := r.counts(); !maps.Equal(got, expectedLife) {
		t.Fatalf("calls = %v\nwant    %v", got, expectedLife)
	}
	// Every message names its effect in its metadata, and with every
	// answer received nothing is looked up (the one history read is the
	// export at close).
	for _, c := range r.slack.Calls() {
		switch {
		case c.Method == "chat.postMessage" && !strings.Contains(c.Params.Get("metadata"), `"event_type":"hikeshi_effect"`):
			t.Errorf("message without metadata: %v", c.Params)
		case c.Method == "conversations.history" && c.Params.Get("include_all_metadata") == "1":
			t.Errorf("a post was looked up: %v", c.Params)
		}
	}
	day := st.DeclaredAt.UTC().Format("20060102")
	ch, ok := r.slack.ChannelByName("payments-" + day + "i-card-payments-failing")
	if !ok {
		t.Fatalf("no channel named from the template; have %v", slices.Collect(maps.Keys(r.slack.Channels())))
	}
	for _, u := range []string{"UALICE001", "UPAY00001", "UPAY00002", "UPAYLEAD1", "USEC00001", "UEXEC0001"} {
		if !slices.Contains(ch.Members, u) {
			t.Errorf("%s not invited (members %v)", u, ch.Members)
		}
	}
	if !ch.Archived || len(ch.Pins) != 1 {
		t.Errorf("archived %v, pins %v", ch.Archived, ch.Pins)
	}
	for _, typ := range []string{events.TypeSlackChannelLinked, events.TypeSlackConversationArchived} {
		if n := r.h.Count(t, st.ID, typ); n != 1 {
			t.Errorf("%s appended %d times", typ, n)
		}
	}
	// The archive is in the object store, and the fact says where.
	var arch *events.ConversationArchived
	for _, e := range r.h.Events(t, st.ID) {
		if e.Type == events.TypeSlackConversationArchived {
			d, _ := e.Decode()
			arch = d.(*events.ConversationArchived)
		}
	}
	obj, err := r.bot.archives.GetBytes(context.Background(), arch.Object)
	if err != nil || int64(len(obj)) != arch.Bytes || arch.Messages != len(ch.Messages) || arch.ChannelID != ch.ID {
		t.Fatalf("archive %+v: %d bytes, err %v, channel has %d messages", arch, len(obj), err, len(ch.Messages))
	}
	if !strings.Contains(string(obj), "renewed the certificate") {
		t.Errorf("archive lacks the closing summary")
	}
}

// waitLog records the transport's waits without spending them.
type waitLog struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (l *waitLog) sleep(_ context.Context, d time.Duration) error {
	l.mu.Lock()
	l.waits = append(l.waits, d)
	l.mu.Unlock()
	return nil
}

func (l *waitLog) all() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.waits)
}

func TestRateLimitStormIsObeyedAndLosesNothing(t *testing.T) {
	var log waitLog
	r := newRigWith(t, "", log.sleep)
	for _, m := range []string{"conversations.create", "chat.postMessage", "conversations.setTopic", "conversations.invite"} {
		r.slack.Fail(m, slacktest.Fault{Status: 429, RetryAfter: 7}, slacktest.Fault{Status: 429, RetryAfter: 3}, slacktest.Fault{Status: 503})
	}
	r.life(incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2", DeclaredBy: "UALICE001"}, func(string) {})
	// The 503 on chat.postMessage is not retried blindly (Slack may have
	// posted): the handler's retry looks in the channel once, then posts.
	want := maps.Clone(expectedLife)
	want["conversations.history"]++
	if got := r.counts(); !maps.Equal(got, want) {
		t.Fatalf("calls = %v\nwant    %v", got, want)
	}
	waits := log.all()
	n7, n3 := 0, 0
	for _, w := range waits {
		switch w {
		case 7 * time.Second:
			n7++
		case 3 * time.Second:
			n3++
		}
	}
	if n7 != 4 || n3 != 4 {
		t.Fatalf("Retry-After waits: %d × 7s, %d × 3s, want 4 each (all waits %v)", n7, n3, waits)
	}
}

func TestConfidentialTitleStaysInThePrivateChannel(t *testing.T) {
	r := newRig(t, "")
	const title = "Credential stuffing against customer login"
	st := r.life(incident.Declare{Title: title, Service: "identity", Severity: "SEV2", DeclaredBy: "UALICE001", Confidential: true}, func(string) {})
	s, _ := r.h.Env.Commands.Get(context.Background(), st.ID)
	link := linkOf(t, r, st.ID)
	private := link.Ref
	if !strings.HasPrefix(private, "G") || !strings.Contains(link.Name, s.Codename) {
		t.Fatalf("link %+v: want a private channel named from codename %s", link, s.Codename)
	}
	for _, c := range r.slack.Calls() {
		if c.Params.Get("channel") == private {
			continue
		}
		for k, vs := range c.Params {
			for _, v := range vs {
				if strings.Contains(strings.ToLower(v), "credential") || strings.Contains(v, "identity") {
					t.Errorf("%s %s=%q leaks the incident outside the private channel", c.Method, k, v)
				}
			}
		}
	}
	if n := r.slack.Channels()["CANNOUNCE1"]; len(n.Messages) != 0 {
		t.Errorf("announced a confidential incident: %v", n.Messages)
	}
}

func TestDrillTouchesNoStakeholder(t *testing.T) {
	r := newRig(t, "")
	st := r.h.Declare(t, incident.Declare{Title: "Game day", Service: "payments", Severity: "SEV1", DeclaredBy: "UALICE001", Drill: true})
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	ch := r.slack.Channels()[linkOf(t, r, st.ID).Ref]
	if !strings.HasPrefix(ch.Name, "drill-payments-") {
		t.Errorf("channel %q lacks the drill prefix", ch.Name)
	}
	for _, u := range []string{"UEXEC0001", "USEC00001"} {
		if slices.Contains(ch.Members, u) {
			t.Errorf("drill invited %s", u)
		}
	}
	if a := r.slack.Channels()["CANNOUNCE1"]; len(a.Messages) != 0 {
		t.Errorf("drill announced")
	}
}

func TestTimekeeperNudgesOncePerSlotAcrossRestarts(t *testing.T) {
	r := newRig(t, "  timekeeper:\n    interval: 15m\n    by_severity: {SEV1: 5m}\n")
	st := r.h.Declare(t, incident.Declare{Title: "Slow search", Service: "search", Severity: "SEV3", DeclaredBy: "UALICE001"})
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	ctx := context.Background()
	tick := func() {
		t.Helper()
		if err := r.bot.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tick()
	if n := r.h.Count(t, st.ID, events.TypeSlackStatusRequested); n != 0 {
		t.Fatalf("nudged before the interval: %d", n)
	}
	r.clock.Add(16 * time.Minute)
	tick()
	tick()
	r.restart()
	tick()
	if n := r.h.Count(t, st.ID, events.TypeSlackStatusRequested); n != 1 {
		t.Fatalf("%d nudges in slot 1, want 1", n)
	}
	r.clock.Add(15 * time.Minute)
	tick()
	if n := r.h.Count(t, st.ID, events.TypeSlackStatusRequested); n != 2 {
		t.Fatalf("%d nudges after slot 2, want 2", n)
	}
	// A status update restarts the count.
	r.clock.Set(time.Now())
	r.h.Do(t, st.ID, incident.UpdateStatus{Status: "identified"})
	r.waitPosted(st.ID)
	tick()
	if n := r.h.Count(t, st.ID, events.TypeSlackStatusRequested); n != 2 {
		t.Fatalf("nudged right after a status update")
	}
	nudges := 0
	for _, m := range r.slack.Channels()[mustLink(t, r, st.ID)].Messages {
		if strings.HasPrefix(m.Text, "What is the status now?") {
			nudges++
		}
	}
	if nudges != 2 {
		t.Fatalf("%d nudge messages, want 2", nudges)
	}
}

func mustLink(t testing.TB, r *rig, id string) string { return linkOf(t, r, id).Ref }

// linkOf is the incident's Slack link, as the writer's state shows it.
func linkOf(t testing.TB, r *rig, id string) incident.Link {
	t.Helper()
	l, ok := r.state(id).Links["slack"]
	if !ok {
		t.Fatalf("incident %s has no channel", id)
	}
	return l
}

func (b *Bot) ensureChannelFor(ctx context.Context, e events.Stored) (channelRef, error) {
	st, err := b.commands.Get(ctx, e.Envelope.Subject)
	if err != nil {
		return channelRef{}, err
	}
	return b.ensureChannel(ctx, &st)
}

// Every replica runs the timekeeper: two bots on one bus ticking together
// post each slot's nudge once, and a claim left by a replica that died is
// taken over once its lease ends.
func TestTimekeeperTwoReplicasNudgeOnce(t *testing.T) {
	r := newRig(t, "  timekeeper:\n    interval: 15m\n")
	st := r.h.Declare(t, incident.Declare{Title: "Slow search", Service: "search", Severity: "SEV3", DeclaredBy: "UALICE001"})
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	other, err := New(context.Background(), r.cfg, Deps{
		JS: r.h.Bus.JS, Commands: r.h.Env.Commands, Effects: r.h.Env.Effects,
		Token: "xoxb-test", SigningSecret: secret, Logger: r.h.Env.Logger, Now: r.clock.Now,
		Sleep: r.sleep,
	})
	if err != nil {
		t.Fatal(err)
	}
	nudges := func() int {
		n := 0
		for _, c := range r.slack.Calls() {
			if c.Method == "chat.postMessage" && strings.HasPrefix(c.Params.Get("text"), "What is the status now?") {
				n++
			}
		}
		return n
	}
	r.clock.Add(time.Minute) // the rig's clock started before the declaration
	for slot := 1; slot <= 5; slot++ {
		r.clock.Add(15 * time.Minute)
		var wg sync.WaitGroup
		for _, b := range []*Bot{r.bot, other, r.bot, other} {
			wg.Go(func() {
				if err := b.Tick(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := nudges(); n != slot {
			t.Fatalf("slot %d: %d nudges posted, want %d", slot, n, slot)
		}
	}
	// A replica claimed slot 6 and died before posting: the others wait
	// for the lease, then one of them posts it.
	r.clock.Add(15 * time.Minute)
	rec, _, err := r.bot.record(context.Background(), st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mine, err := r.bot.claim(context.Background(), st.ID, rec.SinceEvent+":6"); err != nil || !mine {
		t.Fatalf("claim: %v %v", mine, err)
	}
	if err := other.Tick(context.Background()); err != nil || nudges() != 5 {
		t.Fatalf("a live claim was taken over: %d nudges, err %v", nudges(), err)
	}
	r.clock.Add(claimLease + time.Second) // still slot 6: the lease is shorter than the interval
	for _, b := range []*Bot{other, r.bot} {
		if err := b.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := nudges(); n != 6 {
		t.Fatalf("after the lease: %d nudges, want 6", n)
	}
	if n := r.h.Count(t, st.ID, events.TypeSlackStatusRequested); n != 6 {
		t.Fatalf("%d nudges recorded, want 6", n)
	}
}

// A Retry-After longer than the transport waits in one go comes back as an
// error and the event is retried within seconds: the next call still waits
// for the rest of it instead of asking Slack again early.
func TestLongRetryAfterIsWaitedOutAcrossRetries(t *testing.T) {
	var log waitLog
	r := newRigWith(t, "", log.sleep)
	r.slack.Fail("chat.postMessage", slacktest.Fault{Status: 429, RetryAfter: 600})
	st := r.h.Declare(t, incident.Declare{Title: "Search down", Service: "search", Severity: "SEV3", DeclaredBy: "UALICE001"})
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	limited := 0
	for _, c := range r.slack.Calls() {
		if c.Method == "chat.postMessage" && c.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	waits := log.all()
	long := 0
	for _, w := range waits {
		if w > 9*time.Minute && w <= 10*time.Minute {
			long++
		}
	}
	if limited != 1 || long != 1 {
		t.Fatalf("%d rate-limited posts, %d waits of the 10 min Retry-After (all waits %v)", limited, long, waits)
	}
}
