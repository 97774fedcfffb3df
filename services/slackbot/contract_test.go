package slackbot

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/incident"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
)

// TestContract runs the contract every projector keeps on the Slack
// projector: one channel per incident with its posts, topic, pin and
// archive, however often it is replayed or restarted (it finds its channel
// and posts by name and metadata); Slack's restricted_action dead-letters
// the event.
func TestContract(t *testing.T) {
	integrationtest.TestProjector(t, slackCase(true, nil))
}

// TestContractWhileOpen runs the contract on incidents not closed yet:
// without its ledger the projector finds each incident's channel and every
// post it made, and repeats none.
func TestContractWhileOpen(t *testing.T) {
	integrationtest.TestProjector(t, slackCase(false, nil))
}

// slackCase is the Slack projector under the contract, its incidents closed
// or not.
func slackCase(closed bool, departs map[string]string) integrationtest.ProjectorCase {
	life := func(d incident.Declare) integrationtest.Life {
		d.DeclaredBy = "UALICE001"
		l := integrationtest.LifeOf(d)
		l.Commands[1] = incident.AssignCommander{User: "UCMDR0001"}
		if !closed {
			l.Commands = l.Commands[:len(l.Commands)-1]
		}
		return l
	}
	return integrationtest.ProjectorCase{
		Lives: []integrationtest.Life{
			life(integrationtest.Ordinary),
			life(integrationtest.Confidential),
		},
		Features: integrationtest.Features{Departs: departs},
		World: func(t *testing.T) *integrationtest.World {
			r := newStoppedRig(t, "", func(context.Context, time.Duration) error { return nil })
			refuse := &refuser{}
			return &integrationtest.World{
				Hub: r.h,
				Projector: func(t testing.TB) projection.Projector {
					d := r.deps()
					d.Transport = refuse
					b, err := New(context.Background(), r.cfg, d)
					if err != nil {
						t.Fatal(err)
					}
					return b.Projector()
				},
				Effects: func(testing.TB) []string { return r.effects() },
				Refuse:  func(testing.TB) { refuse.arm("restricted_action") },
			}
		},
	}
}

// refuser answers the next Web API call, once armed, with Slack's refusal
// code, as Slack does: HTTP 200 and ok false.
type refuser struct {
	mu   sync.Mutex
	code string
}

func (f *refuser) arm(code string) {
	f.mu.Lock()
	f.code = code
	f.mu.Unlock()
}

func (f *refuser) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	code := f.code
	f.code = ""
	f.mu.Unlock()
	if code == "" {
		return http.DefaultTransport.RoundTrip(req)
	}
	body := fmt.Sprintf(`{"ok":false,"error":%q}`, code)
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req}, nil
}

// effects is what the fake Slack holds, comparable across hubs.
func (r *rig) effects() []string {
	var out []string
	channels := r.slack.Channels()
	ids := slices.SortedFunc(func(yield func(string) bool) {
		for id := range channels {
			if !yield(id) {
				return
			}
		}
	}, func(a, b string) int { return strings.Compare(channels[a].Name, channels[b].Name) })
	for _, id := range ids {
		c := channels[id]
		members := slices.Sorted(slices.Values(c.Members))
		out = append(out, r.h.Mask(fmt.Sprintf("channel %s private %v archived %v topic %q purpose %q members %v pins %d",
			c.Name, c.Private, c.Archived, c.Topic, c.Purpose, members, len(c.Pins))))
		for _, m := range c.Messages {
			out = append(out, r.h.Mask(fmt.Sprintf("%s: %s %s", c.Name, m.Text, m.Blocks)))
			for _, reply := range m.Replies {
				out = append(out, r.h.Mask(fmt.Sprintf("%s, in a thread: %s %s", c.Name, reply.Text, reply.Blocks)))
			}
		}
	}
	return out
}

// TestCollidingNameGetsASuffix: a second incident whose channel name is
// taken by another incident's channel gets its own channel, suffixed.
func TestCollidingNameGetsASuffix(t *testing.T) {
	r := newRig(t, "")
	decl := incident.Declare{Title: "Search down", Service: "search", Severity: "SEV3", DeclaredBy: "UALICE001"}
	st := r.h.Declare(t, decl)
	r.waitFor(st.ID, events.TypeSlackChannelLinked, 1)
	st2 := r.h.Declare(t, decl)
	r.waitFor(st2.ID, events.TypeSlackChannelLinked, 1)
	l1, l2 := linkOf(t, r, st.ID), linkOf(t, r, st2.ID)
	if l1.Ref == l2.Ref || !strings.HasSuffix(l2.Name, "-2") {
		t.Fatalf("links %v and %v", l1, l2)
	}
}

// TestReplayWithItsLedgerCallsSlackForNothing: a projector that starts
// over from the first event, its ledger intact, finds every effect
// recorded and looks nothing up.
func TestReplayWithItsLedgerCallsSlackForNothing(t *testing.T) {
	r := newRig(t, "")
	r.life(incident.Declare{Title: "Card payments failing", Service: "payments", Severity: "SEV2", DeclaredBy: "UALICE001"}, func(string) {})
	r.stop()
	before := len(r.slack.Calls())
	b, err := New(context.Background(), r.cfg, r.deps())
	if err != nil {
		t.Fatal(err)
	}
	r.h.DeliverAll(t, b.Projector())
	if after := len(r.slack.Calls()); after != before {
		t.Fatalf("replay made %d calls: %v", after-before, r.slack.Calls()[before:])
	}
}
