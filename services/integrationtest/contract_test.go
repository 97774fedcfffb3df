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

// TestContractFailsACarelessProjector runs the suite on the careless toy
// in a test process of its own, so that its failures are reported, not
// suffered: restarts and a wiped ledger must catch its second posts.
func TestContractFailsACarelessProjector(t *testing.T) {
	if os.Getenv("HIKESHI_CONTRACT_CARELESS") == "1" {
		integrationtest.TestProjector(t, toyCase(false))
		return
	}
	args := []string{"-test.run=^TestContractFailsACarelessProjector$", "-test.v", "-test.count=1"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "HIKESHI_CONTRACT_CARELESS=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed a projector that posts again on every redelivery:\n%s", out)
	}
	const name = "TestContractFailsACarelessProjector/"
	for sub, want := range map[string]string{
		"Live": "PASS", "ReplayFromTheStartEqualsLive": "PASS", "PermanentRefusalDeadLetters": "PASS",
		"RestartAfterEveryEventRepeatsNoEffect": "FAIL", "WipedLedgerRepeatsNoEffect": "FAIL",
	} {
		if !strings.Contains(string(out), "--- "+want+": "+name+sub+" ") {
			t.Errorf("subtest %s did not %s:\n%s", sub, strings.ToLower(want), out)
		}
	}
}
