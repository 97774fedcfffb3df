package integrationtest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/events"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
)

// toyRemote is a remote that keeps posts, each under the event that caused
// it, and can refuse a call for good.
type toyRemote struct {
	mu     sync.Mutex
	posts  []string
	causes map[string]bool
	refuse bool
}

func (r *toyRemote) post(cause, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse {
		r.refuse = false
		return fmt.Errorf("%w: toy remote answered 400", projection.ErrPermanent)
	}
	r.posts = append(r.posts, text)
	r.causes[cause] = true
	return nil
}

func (r *toyRemote) posted(cause string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.causes[cause]
}

// toyCase is a projector that creates a case at the declaration and
// comments every other event. A careful one records each effect in the
// ledger and looks the remote up before it posts; a careless one posts on
// every event it is handed.
func toyCase(careful bool) integrationtest.ProjectorCase {
	return integrationtest.ProjectorCase{World: func(t *testing.T) *integrationtest.World {
		h := integrationtest.New(t, "")
		remote := &toyRemote{causes: map[string]bool{}}
		handle := func(ctx context.Context, e events.Stored) error {
			text := "comment " + e.Type
			if e.Type == events.TypeDeclared {
				text = "create case"
			}
			if !careful {
				return remote.post(e.ID, text)
			}
			_, err := natsjs.Once(ctx, h.Env.Effects, natsjs.EffectKey("toy", e.ID), func(context.Context) (bool, error) {
				if remote.posted(e.ID) {
					return true, nil
				}
				return true, remote.post(e.ID, text)
			})
			return err
		}
		return &integrationtest.World{
			Hub:       h,
			Projector: func(testing.TB) projection.Projector { return projection.Projector{Durable: "toy", Handle: handle} },
			Effects: func(testing.TB) []string {
				remote.mu.Lock()
				defer remote.mu.Unlock()
				return append([]string(nil), remote.posts...)
			},
			Refuse: func(testing.TB) {
				remote.mu.Lock()
				remote.refuse = true
				remote.mu.Unlock()
			},
		}
	}}
}

func TestContractPassesACarefulProjector(t *testing.T) {
	integrationtest.TestProjector(t, toyCase(true))
}

// TestContractFailsWhatBreaksIt runs the suite, in a test process of its
// own so that its failures are reported, not suffered, on cases it must
// fail: a careless projector (restarts and a wiped ledger catch its second
// posts), and a careful one said to depart from live where it does not.
func TestContractFailsWhatBreaksIt(t *testing.T) {
	cases := map[string]struct {
		c    integrationtest.ProjectorCase
		want map[string]string // subtest → PASS or FAIL
	}{
		"careless": {toyCase(false), map[string]string{
			"Live": "PASS", "ReplayFromTheStartEqualsLive": "PASS", "PermanentRefusalDeadLetters": "PASS",
			"RestartAfterEveryEventRepeatsNoEffect": "FAIL", "WipedLedgerRepeatsNoEffect": "FAIL",
		}},
		"careful, said to depart": {departing(toyCase(true)), map[string]string{
			"Live": "PASS", "ReplayFromTheStartEqualsLive": "FAIL", "RestartAfterEveryEventRepeatsNoEffect": "PASS",
		}},
	}
	if name := os.Getenv("HIKESHI_CONTRACT_CASE"); name != "" {
		integrationtest.TestProjector(t, cases[name].c)
		return
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			args := []string{"-test.run=^TestContractFailsWhatBreaksIt$", "-test.v", "-test.count=1"}
			if testing.Short() {
				args = append(args, "-test.short")
			}
			cmd := exec.Command(os.Args[0], args...)
			cmd.Env = append(os.Environ(), "HIKESHI_CONTRACT_CASE="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed:\n%s", out)
			}
			for sub, want := range tc.want {
				if !strings.Contains(string(out), "--- "+want+": TestContractFailsWhatBreaksIt/"+sub+" ") {
					t.Errorf("subtest %s did not %s:\n%s", sub, strings.ToLower(want), out)
				}
			}
		})
	}
}

func departing(c integrationtest.ProjectorCase) integrationtest.ProjectorCase {
	c.Features.Departs = map[string]string{"ReplayFromTheStartEqualsLive": "said to, though it does not"}
	return c
}
