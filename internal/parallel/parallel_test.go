package parallel

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

func TestMapKeepsOrderAndBound(t *testing.T) {
	items := make([]int, 200)
	for i := range items {
		items[i] = i
	}
	var running, peak atomic.Int32
	out, err := Map(context.Background(), 3, items, func(_ context.Context, i, v int) (int, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		defer running.Add(-1)
		return v * v, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range out {
		if v != i*i {
			t.Fatalf("out[%d] = %d", i, v)
		}
	}
	if p := peak.Load(); p > 3 || p < 1 {
		t.Fatalf("peak concurrency %d, want 1..3", p)
	}
}

func TestFirstErrorCancelsTheRest(t *testing.T) {
	boom := errors.New("boom")
	var calls atomic.Int32
	items := make([]int, 1000)
	err := For(context.Background(), 2, items, func(ctx context.Context, i, _ int) error {
		calls.Add(1)
		switch {
		case i < 5:
			return nil
		case i == 5:
			return boom
		}
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if n := calls.Load(); n > 10 {
		t.Fatalf("%d calls started after the failure; the rest should be skipped", n)
	}
}

func TestCancelledContextIsAnError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err := Map(ctx, 4, []int{1, 2, 3}, func(context.Context, int, int) (int, error) { return 1, nil })
	if !errors.Is(err, context.Canceled) || out != nil {
		t.Fatalf("cancelled: %v, %v", out, err)
	}
	if err := For(context.Background(), 0, nil, func(context.Context, int, int) error { return nil }); err != nil {
		t.Fatalf("empty: %v", err)
	}
}
