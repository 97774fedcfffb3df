package hub

import (
	"slices"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/adapters/natsjs"
	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/module"
)

// testNKey is a public user nkey and testNKeySeed its seed (nkeys.CreateUser), made for these tests.
const (
	testNKey     = "UAE364FWOHVYQ635RSJEOXVWBMCRFTTMEO5455FQT4H63ZSZPDQGCRI7"
	testNKeySeed = "SUANDZUTEHF6CP7CUS6YEQGD4VY4S2FK3AYOTIMYMV7RQ5NUO3CZMJARLQ"
)

// NKeyPairForTests is testNKey and its seed, for the hub_test package.
var NKeyPairForTests = [2]string{testNKey, testNKeySeed}

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
		{name: "all interfaces with an auth section", cfg: Config{Listen: "0.0.0.0:8080", File: authFile("auth: {show_codenames: false}")}},
		{name: "the error says what to configure", cfg: Config{Listen: "0.0.0.0:8080"}, wantErr: "add an auth section to hikeshi.yaml"},
		{name: "auth.oidc incomplete", cfg: Config{File: authFile("auth: {oidc: {issuer: https://idp.example}}")}, wantErr: "auth.oidc: set client_id, client_secret_env"},
		{name: "auth.oidc unknown role", cfg: Config{File: authFile("auth: {oidc: {issuer: https://idp.example, client_id: c, client_secret_env: S, roles: {sre: root}}}")}, wantErr: "auth.oidc.roles[sre]"},
		{name: "auth unknown key", cfg: Config{File: authFile("auth: {tokens: true}")}, wantErr: "tokens"},
		{name: "no API, no token needed", cfg: Config{Listen: "0.0.0.0:8080", Targets: []string{TargetTimeline}}},
		{name: "unknown target", cfg: Config{Targets: []string{"api", "slack"}}, wantErr: "unknown target"},
		{name: "bad case prefix", cfg: Config{CasePrefix: "1NC"}, wantErr: "case prefix"},
		{name: "case prefix with dash", cfg: Config{CasePrefix: "IN-C"}, wantErr: "case prefix"},
		{name: "case prefix letters and digits", cfg: Config{CasePrefix: "SEC2"}},
		{name: "nats on loopback without login", cfg: Config{NATSListen: "127.0.0.1:4222"}},
		{name: "nats beyond loopback without login", cfg: Config{NATSListen: "0.0.0.0:4222"}, wantErr: "refusing to expose NATS on 0.0.0.0:4222 without authentication"},
		{name: "nats on a hostname without login", cfg: Config{NATSListen: "nats.example:4222"}, wantErr: "without authentication"},
		{name: "nats beyond loopback with user", cfg: Config{NATSListen: "0.0.0.0:4222", NATSAuth: natsjs.Auth{User: "reader", Password: "p"}}},
		{name: "nats beyond loopback with nkey", cfg: Config{NATSListen: "0.0.0.0:4222", NATSAuth: natsjs.Auth{NKey: testNKey}}},
		{name: "nats user without password", cfg: Config{NATSListen: "0.0.0.0:4222", NATSAuth: natsjs.Auth{User: "reader"}}, wantErr: "HIKESHI_NATS_PASSWORD"},
		{name: "nats nkey seed", cfg: Config{NATSListen: "0.0.0.0:4222", NATSAuth: natsjs.Auth{NKey: testNKeySeed}}, wantErr: "seed"},
		{name: "nats nkey not a user key", cfg: Config{NATSListen: "0.0.0.0:4222", NATSAuth: natsjs.Auth{NKey: "UNOTAKEY"}}, wantErr: "not a public user nkey"},
		{name: "nats TLS cert without key", cfg: Config{NATSListen: "127.0.0.1:4222", NATSAuth: natsjs.Auth{TLSCert: "c.pem"}}, wantErr: "--nats-tls-key"},
		{name: "nats login without nats-listen", cfg: Config{NATSAuth: natsjs.Auth{User: "reader", Password: "p"}}, wantErr: "--nats-listen"},
		{name: "nats login with external nats", cfg: Config{NATSURL: "nats://n:4222", NATSListen: "0.0.0.0:4222", NATSAuth: natsjs.Auth{User: "reader", Password: "p"}}, wantErr: "--nats-listen"},
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

func authFile(yaml string) *config.File {
	f, err := config.Parse("hikeshi.yaml", []byte(yaml))
	if err != nil {
		panic(err)
	}
	return f
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
	modules := []module.Module{{Name: "test-files", WritesDataDir: true}, {Name: "test-remote"}}
	for _, c := range []struct {
		targets []string
		want    bool
	}{
		{[]string{TargetAPI}, false},
		{[]string{TargetAPI, "test-remote"}, false},
		{[]string{TargetTimeline}, true},
		{[]string{TargetAPI, "test-files"}, true},
	} {
		cfg := Config{Targets: c.targets, Modules: modules}
		if got := cfg.writesDataDir(); got != c.want {
			t.Errorf("%v: writes the data dir = %v, want %v", c.targets, got, c.want)
		}
	}
}

// The hub knows only the modules it is handed: one runs when hikeshi.yaml
// has its section or --targets names it, and a section no module owns is
// an error.
func TestModulesFromTheTable(t *testing.T) {
	table := []module.Module{{Name: "test-files", WritesDataDir: true}, {Name: "test-remote"}}
	file, err := config.Parse("hikeshi.yaml", []byte("test-remote:\n  url: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{File: file, Modules: table}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := []string{TargetAPI, TargetTimeline, "test-remote"}; !slices.Equal(cfg.Targets, want) {
		t.Errorf("targets %v, want %v", cfg.Targets, want)
	}
	cfg = Config{Targets: []string{TargetAPI, "test-files"}, Modules: table}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Errorf("a module named in --targets: %v", err)
	}
	for _, c := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"section without its module", Config{File: file}, "test-remote"},
		{"target without its module", Config{Targets: []string{"test-remote"}}, `unknown target "test-remote" (known: api, timeline)`},
		{"module listed twice", Config{Modules: append(table, module.Module{Name: "test-remote"})}, `module "test-remote" is listed twice`},
		{"module named like a target", Config{Modules: []module.Module{{Name: TargetTimeline}}}, `module "timeline" is listed twice, or named like a built-in target`},
	} {
		c.cfg.Defaults()
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: Validate = %v, want an error about %q", c.name, err, c.wantErr)
		}
	}
}
