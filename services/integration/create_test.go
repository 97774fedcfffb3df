package integration_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hikeshi/hikeshi/services/integration"
	"github.com/hikeshi/hikeshi/services/integrationtest"
	"github.com/hikeshi/hikeshi/services/projection"
)

// remote creates one object per call; its search sees an object only
// after lag more searches, as JIRA's index trails its writes.
type remote struct {
	creates, finds, lag int
	created             bool
	unseen              int
}

func (r *remote) find(context.Context) (string, bool, error) {
	r.finds++
	if !r.created {
		return "", false, nil
	}
	if r.unseen > 0 {
		r.unseen--
		return "", false, nil
	}
	return "OPS-1", true, nil
}

// create carries the call out, then answers with err (nil: received).
func (r *remote) create(err error) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		r.creates++
		if errors.Is(err, projection.ErrPermanent) {
			return "", err
		}
		r.created, r.unseen = true, r.lag
		return "OPS-1", err
	}
}

func finder(h *integrationtest.Hub, r *remote, create func(context.Context) (string, error)) integration.Finder[string] {
	return integration.Finder[string]{Effects: h.Env.Effects, Key: "test.case-create", Find: r.find, Create: create,
		Lag: []time.Duration{0, time.Millisecond, time.Millisecond, time.Millisecond}}
}

// An answer lost after the remote created the object: searched again
// (through the index lag) before any second create, in the same call or
// in the next one after a crash.
func TestFinderSearchesBeforeEveryRetriedCreate(t *testing.T) {
	lost := fmt.Errorf("jira create: 502 Bad Gateway")
	t.Run("same call", func(t *testing.T) {
		h := integrationtest.New(t, "")
		r := &remote{lag: 2}
		ref, created, err := finder(h, r, r.create(lost)).FindOrCreate(context.Background())
		if err != nil || ref != "OPS-1" || !created || r.creates != 1 {
			t.Fatalf("ref %q created %v err %v after %d creates", ref, created, err, r.creates)
		}
	})
	t.Run("after a crash", func(t *testing.T) {
		h := integrationtest.New(t, "")
		r := &remote{lag: 2}
		ctx, cancel := context.WithCancel(context.Background())
		crash := func(ctx context.Context) (string, error) {
			_, err := r.create(nil)(ctx)
			cancel()
			return "", errors.Join(err, context.Canceled)
		}
		if _, _, err := finder(h, r, crash).FindOrCreate(ctx); err == nil {
			t.Fatal("the crashed call succeeded")
		}
		ref, created, err := finder(h, r, r.create(nil)).FindOrCreate(context.Background())
		if err != nil || ref != "OPS-1" || created || r.creates != 1 {
			t.Fatalf("ref %q created %v err %v after %d creates", ref, created, err, r.creates)
		}
	})
	t.Run("refused for good", func(t *testing.T) {
		h := integrationtest.New(t, "")
		r := &remote{}
		refused := fmt.Errorf("%w: jira create: 400 summary", projection.ErrPermanent)
		if _, _, err := finder(h, r, r.create(refused)).FindOrCreate(context.Background()); !errors.Is(err, projection.ErrPermanent) {
			t.Fatalf("err %v, want the refusal", err)
		}
		r.finds = 0
		ref, created, err := finder(h, r, r.create(nil)).FindOrCreate(context.Background())
		if err != nil || ref != "OPS-1" || !created || r.creates != 2 || r.finds != 1 {
			t.Fatalf("ref %q created %v err %v after %d creates and %d searches; a refused create leaves nothing to wait for",
				ref, created, err, r.creates, r.finds)
		}
	})
}
