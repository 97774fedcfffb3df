package hub

import (
	"slices"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty: valid
	}{
		{name: "defaults", cfg: Config{}},
		{name: "loopback v4", cfg: Config{Listen: "127.0.0.1:0"}},
		{name: "loopback v6", cfg: Config{Listen: "[::1]:8080"}},
		{name: "localhost", cfg: Config{Listen: "localhost:8080"}},
		{name: "all interfaces without token", cfg: Config{Listen: "0.0.0.0:8080"}, wantErr: "token"},
		{name: "empty host without token", cfg: Config{Listen: ":8080"}, wantErr: "token"},
		{name: "v6 any without token", cfg: Config{Listen: "[::]:8080"}, wantErr: "token"},
		{name: "public address without token", cfg: Config{Listen: "192.0.2.10:8080"}, wantErr: "token"},
		{name: "hostname without token", cfg: Config{Listen: "hikeshi.example:8080"}, wantErr: "token"},
		{name: "all interfaces with token", cfg: Config{Listen: "0.0.0.0:8080", Token: "t"}},
		{name: "no API, no token needed", cfg: Config{Listen: "0.0.0.0:8080", Targets: []string{TargetTimeline}}},
		{name: "unknown target", cfg: Config{Targets: []string{"api", "slack"}}, wantErr: "unknown target"},
		{name: "bad case prefix", cfg: Config{CasePrefix: "1NC"}, wantErr: "case prefix"},
		{name: "case prefix with dash", cfg: Config{CasePrefix: "IN-C"}, wantErr: "case prefix"},
		{name: "case prefix letters and digits", cfg: Config{CasePrefix: "SEC2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Defaults()
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate = %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

func TestStartRefusesUnsafeListen(t *testing.T) {
	dir := t.TempDir()
	h, err := Start(t.Context(), Config{DataDir: dir, Listen: "0.0.0.0:8080"})
	if err == nil {
		h.Close()
		t.Fatal("Start listened on 0.0.0.0:8080 without a token")
	}
	// Nothing was opened: the data dir is not locked.
	lock, err := LockDataDir(dir)
	if err != nil {
		t.Fatalf("data dir left locked: %v", err)
	}
	lock.Release()
}

// A process takes the data dir's lock when it writes there: the timeline,
// or a module that keeps files in it; an api-only process does not.
func TestWritesDataDir(t *testing.T) {
	saved := modules
	t.Cleanup(func() { modules = saved })
	modules = append(slices.Clip(modules), Module{Name: "test-files", WritesDataDir: true}, Module{Name: "test-remote"})
	for _, c := range []struct {
		targets []string
		want    bool
	}{
		{[]string{TargetAPI}, false},
		{[]string{TargetAPI, "test-remote"}, false},
		{[]string{TargetTimeline}, true},
		{[]string{TargetAPI, "test-files"}, true},
	} {
		cfg := Config{Targets: c.targets}
		if got := cfg.writesDataDir(); got != c.want {
			t.Errorf("%v: writes the data dir = %v, want %v", c.targets, got, c.want)
		}
	}
}
