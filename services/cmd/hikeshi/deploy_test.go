package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hikeshi/hikeshi/services/config"
	"github.com/hikeshi/hikeshi/services/hub"
	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"
)

// The files under deploy/ are checked against the real parsers: the serve
// flag set, hub.Config's validation, hikeshi.yaml's loader, YAML decoding
// of the manifests and nats-server's own configuration parser.

func deployFile(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "..", "deploy"}, parts...)...)
}

func readDeploy(t *testing.T, parts ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(deployFile(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serveFlagNames are the flags `hikeshi serve --help` lists.
func serveFlagNames(t *testing.T) map[string]bool {
	t.Helper()
	code, usage := runServe(t, "--help")
	if code != 0 {
		t.Fatalf("serve --help: exit %d\n%s", code, usage)
	}
	names := map[string]bool{}
	re := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	for _, m := range re.FindAllStringSubmatch(usage, -1) {
		names[m[1]] = true
	}
	if !names["nats"] || !names["listen"] {
		t.Fatalf("no serve flags found in its usage:\n%s", usage)
	}
	return names
}

// runServe runs `hikeshi serve args...` in process, with the flag set's
// output (usage, errors) captured.
func runServe(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w // the flag set writes its usage to os.Stderr
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&out, r); close(done) }()
	code := run(context.Background(), append([]string{"serve"}, args...), &out, w)
	os.Stderr = saved
	w.Close()
	<-done
	return code, out.String()
}

// checkServeArgs checks a `hikeshi serve` command line (without "serve"):
// every flag is one serve has, with a value it takes (parsing stops at
// the trailing --help, before the hub starts), and the targets, listen
// address and hikeshi.yaml pass the hub's own validation.
func checkServeArgs(t *testing.T, where string, args []string, file *config.File, token string) {
	t.Helper()
	for _, k := range os.Environ() {
		if strings.HasPrefix(k, "HIKESHI_") {
			t.Fatalf("%s is set: it would take part in the check of %s", strings.SplitN(k, "=", 2)[0], where)
		}
	}
	if code, out := runServe(t, append(slices.Clone(args), "--help")...); code != 0 {
		t.Errorf("%s: hikeshi serve %s: exit %d\n%s", where, strings.Join(args, " "), code, firstLines(out, 3))
	}
	cfg := hub.Config{Modules: modules, File: file, Token: token,
		Listen: flagValue(args, "listen"), NATSURL: flagValue(args, "nats")}
	if ts := flagValue(args, "targets"); ts != "" {
		cfg.Targets = strings.Split(ts, ",")
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	if cfg.NATSURL == "" || flagValue(args, "replicas") != "3" {
		t.Errorf("%s: want a hub on an external NATS cluster (--nats) with R3 streams (--replicas 3): %q", where, args)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// flagValue is the value of --name in args (--name v or --name=v).
func flagValue(args []string, name string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// checkEnvName checks that an environment variable the deployment sets
// for a hub is one it reads: a serve flag's, or a secret hikeshi.yaml
// names.
func checkEnvName(t *testing.T, where, name string, flags map[string]bool, yamlText string) {
	t.Helper()
	if f, ok := strings.CutPrefix(name, "HIKESHI_"); ok && flags[strings.ToLower(strings.ReplaceAll(f, "_", "-"))] {
		return
	}
	if name == "HIKESHI_NATS_PASSWORD" || strings.Contains(yamlText, "_env: "+name+"\n") {
		return
	}
	t.Errorf("%s: environment variable %s is neither a serve flag nor a secret hikeshi.yaml names", where, name)
}

func TestDeployClusterNATSConfigs(t *testing.T) {
	clients, routes := map[int]string{}, map[string]bool{}
	for _, name := range []string{"nats-1.conf", "nats-2.conf", "nats-3.conf"} {
		opts, err := server.ProcessConfigFile(deployFile("cluster", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !opts.JetStream || opts.Cluster.Name != "hikeshi-local" || len(opts.Routes) != 3 || opts.Host != "127.0.0.1" || opts.Cluster.Host != "127.0.0.1" {
			t.Errorf("%s: want JetStream, cluster hikeshi-local on loopback with routes to all three nodes: js %v cluster %q host %s/%s routes %v",
				name, opts.JetStream, opts.Cluster.Name, opts.Host, opts.Cluster.Host, opts.Routes)
		}
		if prev, dup := clients[opts.Port]; dup {
			t.Errorf("%s and %s both listen on client port %d", prev, name, opts.Port)
		}
		clients[opts.Port] = name
		routes[opts.Cluster.Host+":"+strconv.Itoa(opts.Cluster.Port)] = true
		for _, r := range opts.Routes {
			routes[r.Host] = routes[r.Host] || false
		}
	}
	for addr, listened := range routes {
		if !listened {
			t.Errorf("route to %s: no node listens there", addr)
		}
	}
	script := string(readDeploy(t, "cluster", "run.sh"))
	for port := range clients {
		if !strings.Contains(script, "nats://127.0.0.1:"+strconv.Itoa(port)) {
			t.Errorf("run.sh does not give the hubs the node on port %d", port)
		}
	}
}

// TestDeployClusterScriptRunsHubs checks the hubs' command line in
// make cluster's script with the serve flag set.
func TestDeployClusterScriptRunsHubs(t *testing.T) {
	script := string(readDeploy(t, "cluster", "run.sh"))
	// The hub command spans continued lines.
	joined := strings.ReplaceAll(script, "\\\n", " ")
	i := strings.Index(joined, `"$bin/hikeshi" serve `)
	if i < 0 {
		t.Fatal("run.sh does not run hikeshi serve")
	}
	line := joined[i+len(`"$bin/hikeshi" serve `):]
	line = line[:strings.IndexAny(line, ")\n")]
	vars := map[string]string{`"$nats_urls"`: "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224",
		`"$name"`: "a", `"$dir/hub-$name"`: t.TempDir(), `"127.0.0.1:$port"`: "127.0.0.1:8081"}
	var args []string
	for _, f := range strings.Fields(line) {
		if v, ok := vars[f]; ok {
			f = v
		}
		if strings.ContainsAny(f, `$"`) {
			t.Fatalf("run.sh: unexpanded %s in the hub command line %q", f, line)
		}
		args = append(args, f)
	}
	checkServeArgs(t, "run.sh", args, config.Empty(), "")
	if flagValue(args, "node-name") == "" {
		t.Errorf("run.sh: the hubs need a --node-name each: %q", args)
	}
}

// unit is a systemd unit file: section → key → values (keys may repeat).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, b []byte) unit {
	t.Helper()
	u, section := unit{}, ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, "\\") {
				t.Fatalf("line %d: %q is not key=value in a section", n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Fatalf("no [%s] section", s)
		}
	}
	if len(u["Service"]["ExecStart"]) != 1 {
		t.Fatalf("want one ExecStart, have %q", u["Service"]["ExecStart"])
	}
	return u
}

// unitEnv is the unit's Environment= settings.
func (u unit) env() map[string]string {
	env := map[string]string{}
	for _, e := range u["Service"]["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	return env
}

func TestDeploySystemdCluster(t *testing.T) {
	// The NATS node: its command line through nats-server's own flag
	// parser, which reads the config file as the server would.
	nu := parseUnit(t, readDeploy(t, "systemd", "nats-server.service"))
	args := strings.Fields(nu["Service"]["ExecStart"][0])
	if filepath.Base(args[0]) != "nats-server" {
		t.Fatalf("nats-server.service runs %s", args[0])
	}
	for i, a := range args {
		if a == "/etc/nats/nats-server.conf" {
			args[i] = deployFile("systemd", "nats-server.conf")
		}
	}
	for k, v := range nu.env() {
		t.Setenv(k, strings.ReplaceAll(v, "%H", "nats-1.internal"))
	}
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	opts, err := server.ConfigureOptions(fs, args[1:], func() {}, func() {}, func() {})
	if err != nil {
		t.Fatalf("nats-server.service: %v", err)
	}
	if opts.ServerName != "nats-1.internal" || !opts.JetStream || opts.StoreDir == "" || !opts.SyncAlways || len(opts.Routes) != 3 || opts.Cluster.Name == "" {
		t.Errorf("nats-server.conf: want a named JetStream node with a store dir, sync always and routes to all three nodes: name %q js %v store %q sync %v routes %v cluster %q",
			opts.ServerName, opts.JetStream, opts.StoreDir, opts.SyncAlways, opts.Routes, opts.Cluster.Name)
	}
	if w := nu["Service"]["ReadWritePaths"]; !slices.Contains(w, opts.StoreDir) {
		t.Errorf("nats-server.service: the store dir %s is not among ReadWritePaths %q", opts.StoreDir, w)
	}

	// The hub: its command line through serve's flag set.
	hu := parseUnit(t, readDeploy(t, "systemd", "hikeshi.service"))
	args = strings.Fields(hu["Service"]["ExecStart"][0])
	if filepath.Base(args[0]) != "hikeshi" || args[1] != "serve" {
		t.Fatalf("hikeshi.service runs %q", args[:2])
	}
	for _, u := range strings.Split(flagValue(args, "nats"), ",") {
		if !slices.ContainsFunc(opts.Routes, func(r *url.URL) bool { return strings.HasPrefix(u, "nats://"+r.Hostname()+":") }) {
			t.Errorf("hikeshi.service: --nats %s is not one of the cluster's nodes", u)
		}
	}
	// The unit reads hikeshi.yaml and HIKESHI_TOKEN from /etc/hikeshi:
	// check the arguments with the example hikeshi.yaml and a token.
	ex, err := config.Load(deployFile("hikeshi.yaml"), true)
	if err != nil {
		t.Fatal(err)
	}
	flags := serveFlagNames(t)
	for k := range hu.env() {
		checkEnvName(t, "hikeshi.service", k, flags, "")
	}
	checkServeArgs(t, "hikeshi.service", args[2:], ex, "service-token")
}

func TestDeployKubernetes(t *testing.T) {
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(readDeploy(t, "k8s", "hikeshi.yaml")))
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("k8s/hikeshi.yaml: document %d: %v", len(docs)+1, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	byKind := map[string][]map[string]any{}
	for _, d := range docs {
		kind, _ := d["kind"].(string)
		if d["apiVersion"] == nil || str(obj(d, "metadata"), "name") == "" {
			t.Errorf("k8s/hikeshi.yaml: a %s without apiVersion or metadata.name", kind)
		}
		byKind[kind] = append(byKind[kind], d)
	}
	for kind, n := range map[string]int{"ConfigMap": 1, "Secret": 1, "Deployment": 2, "Service": 1, "PodDisruptionBudget": 1} {
		if len(byKind[kind]) != n {
			t.Errorf("k8s/hikeshi.yaml: %d %s, want %d", len(byKind[kind]), kind, n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	yamlText := str(obj(byKind["ConfigMap"][0], "data"), "hikeshi.yaml")
	file, err := config.Parse("hikeshi.yaml", []byte(yamlText))
	if err != nil {
		t.Fatalf("the ConfigMap's hikeshi.yaml: %v", err)
	}
	secret := obj(byKind["Secret"][0], "stringData")
	if !strings.HasPrefix(str(secret, "HIKESHI_STORE"), "postgres://") {
		t.Errorf("the Secret's HIKESHI_STORE is not a PostgreSQL URL: %q", secret["HIKESHI_STORE"])
	}
	for k := range secret {
		checkEnvName(t, "Secret", k, serveFlagNames(t), yamlText)
	}

	flags := serveFlagNames(t)
	targets := map[string]string{}
	for _, d := range byKind["Deployment"] {
		name := str(obj(d, "metadata"), "name")
		spec := obj(d, "spec")
		tmpl := obj(spec, "template")
		labels := obj(obj(tmpl, "metadata"), "labels")
		for k, v := range obj(obj(spec, "selector"), "matchLabels") {
			if labels[k] != v {
				t.Errorf("%s: selector %s=%v does not match the pod labels %v", name, k, v, labels)
			}
		}
		pod := obj(tmpl, "spec")
		containers, _ := pod["containers"].([]any)
		if len(containers) != 1 {
			t.Fatalf("%s: %d containers, want the hub alone", name, len(containers))
		}
		c := containers[0].(map[string]any)
		var args []string
		for _, a := range c["args"].([]any) {
			args = append(args, a.(string))
		}
		if len(args) == 0 || args[0] != "serve" {
			t.Fatalf("%s: args %q do not run serve", name, args)
		}
		checkServeArgs(t, name, args[1:], file, str(secret, "HIKESHI_TOKEN"))
		targets[name] = flagValue(args, "targets")
		for _, e := range listOf(c["env"]) {
			checkEnvName(t, name, str(e, "name"), flags, yamlText)
		}
		fromSecret := false
		for _, e := range listOf(c["envFrom"]) {
			fromSecret = fromSecret || str(obj(e, "secretRef"), "name") == str(obj(byKind["Secret"][0], "metadata"), "name")
		}
		if !fromSecret {
			t.Errorf("%s: does not take its environment from the Secret", name)
		}
		mounted := false
		for _, v := range listOf(pod["volumes"]) {
			mounted = mounted || str(obj(v, "configMap"), "name") == str(obj(byKind["ConfigMap"][0], "metadata"), "name")
		}
		if cfgPath := flagValue(args, "config"); !mounted || filepath.Base(cfgPath) != "hikeshi.yaml" {
			t.Errorf("%s: --config %q, ConfigMap mounted %v", name, cfgPath, mounted)
		}
	}
	// The split: the API with its timeline in one Deployment, the
	// integrations in another, every target somewhere, none twice.
	seen := map[string]string{}
	for name, ts := range targets {
		for _, tg := range strings.Split(ts, ",") {
			if prev, dup := seen[tg]; dup {
				t.Errorf("target %s runs in %s and %s", tg, prev, name)
			}
			seen[tg] = name
		}
	}
	if seen[hub.TargetAPI] == "" || seen[hub.TargetAPI] != seen[hub.TargetTimeline] {
		t.Errorf("want api and timeline in one Deployment: %v", targets)
	}
	for _, m := range modules {
		if file.Has(m.Name) && seen[m.Name] == "" {
			t.Errorf("hikeshi.yaml configures %s, but no Deployment runs it: %v", m.Name, targets)
		}
	}
	svc := obj(byKind["Service"][0], "spec")
	for _, d := range byKind["Deployment"] {
		labels := obj(obj(obj(obj(d, "spec"), "template"), "metadata"), "labels")
		match := true
		for k, v := range obj(svc, "selector") {
			match = match && labels[k] == v
		}
		if name := str(obj(d, "metadata"), "name"); match != (name == seen[hub.TargetAPI]) {
			t.Errorf("the Service selects %s: %v (want the API's pods only)", name, match)
		}
	}
}

// TestDeployNATSHelmValues checks the values for the official NATS chart:
// a 3-replica cluster with JetStream on file storage.
func TestDeployNATSHelmValues(t *testing.T) {
	var v map[string]any
	if err := yaml.Unmarshal(readDeploy(t, "k8s", "nats-values.yaml"), &v); err != nil {
		t.Fatal(err)
	}
	cfg := obj(v, "config")
	cluster, js := obj(cfg, "cluster"), obj(cfg, "jetstream")
	fileStore := obj(js, "fileStore")
	if cluster["enabled"] != true || cluster["replicas"] != 3 || js["enabled"] != true || fileStore["enabled"] != true || obj(fileStore, "pvc")["enabled"] != true {
		t.Errorf("want config.cluster {enabled: true, replicas: 3} and config.jetstream {enabled: true, fileStore {enabled: true, pvc.enabled: true}}: %v", cfg)
	}
	// The hubs' --nats names the chart's Service (its release name, nats).
	b := string(readDeploy(t, "k8s", "hikeshi.yaml"))
	if !strings.Contains(b, "--nats=nats://nats:4222") {
		t.Error("k8s/hikeshi.yaml does not reach the chart's Service nats://nats:4222")
	}
}

// TestDeployNATSConfigs parses every other NATS config under deploy/.
func TestDeployNATSConfigs(t *testing.T) {
	t.Setenv("NATS_SERVER_NAME", "nats-1.internal")
	for _, name := range []string{"nats-server.conf", "nats-cluster.conf", filepath.Join("systemd", "nats-server.conf")} {
		opts, err := server.ProcessConfigFile(deployFile(name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !opts.JetStream || opts.ServerName == "" {
			t.Errorf("%s: want a named JetStream server: %q %v", name, opts.ServerName, opts.JetStream)
		}
	}
}

func obj(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}

func listOf(v any) []map[string]any {
	var out []map[string]any
	l, _ := v.([]any)
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
