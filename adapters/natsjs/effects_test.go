package natsjs_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/adapters/natsjs/natstest"
)

func TestEffectsOnce(t *testing.T) {
	bus := natstest.Start(t)
	ctx := context.Background()
	fx, err := natsjs.NewEffects(ctx, bus.JS)
	if err != nil {
		t.Fatal(err)
	}
	key := natsjs.EffectKey("slack", "inc-1", "channel")
	calls := 0
	create := func(context.Context) (string, error) { calls++; return "C123", nil }
	for range 3 {
		got, err := natsjs.Once(ctx, fx, key, create)
		if err != nil || got != "C123" {
			t.Fatalf("Once = %q, %v", got, err)
		}
	}
	if calls != 1 {
		t.Fatalf("effect done %d times, want once", calls)
	}
	boom := errors.New("remote down")
	other := natsjs.EffectKey("slack", "inc-1", "kickoff")
	if _, err := natsjs.Once(ctx, fx, other, func(context.Context) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("failed effect: %v", err)
	}
	if ok, err := fx.Get(ctx, other, nil); ok || err != nil {
		t.Fatalf("a failed effect was recorded: ok=%v err=%v", ok, err)
	}
}

func TestEffectKeyIsValid(t *testing.T) {
	k := natsjs.EffectKey("slack", "payments-20261121i-db outage", "msg:ts/1.2")
	if strings.ContainsAny(k, " :/*>") || strings.Count(k, ".") != 2 || !strings.HasPrefix(k, "slack.") {
		t.Fatalf("EffectKey = %q", k)
	}
	if natsjs.EffectKey("a", "b c") != natsjs.EffectKey("a", "b c") {
		t.Fatal("EffectKey not deterministic")
	}
}
