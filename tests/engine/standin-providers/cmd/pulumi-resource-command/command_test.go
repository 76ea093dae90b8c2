package main

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"dare.local/standin-providers/internal/standin"
)

type recorder struct {
	mu     sync.Mutex
	status []string
	logs   []string
}

func (r *recorder) runner(conn connection) *runner {
	return &runner{conn: conn, logStdout: true, logStderr: true,
		status: func(s string) { r.mu.Lock(); r.status = append(r.status, s); r.mu.Unlock() },
		log:    func(_ diag.Severity, s string) { r.mu.Lock(); r.logs = append(r.logs, s); r.mu.Unlock() }}
}

func keyConn(s *testServer, key string) connection {
	return connection{endpoint: endpoint{host: "127.0.0.1", port: s.port, user: "u", privateKey: &key, dialErrorLimit: 10, perDialTimeout: 5}}
}

func TestRunPipesStdinEnvAndOutput(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	key, pub := clientKey(t)
	s := startServer(t, pub, "")
	rec := &recorder{}
	r := rec.runner(keyConn(s, key))
	r.stdin, r.env = "A='1'\nB=two\n", map[string]string{"TEST_X": "x"}
	stdout, stderr, err := r.run(context.Background(), `set -a; . /dev/stdin; echo "$A $B $TEST_X"; echo warn >&2`)
	if err != nil || stdout != "1 two x" || stderr != "warn" {
		t.Fatalf("stdout %q stderr %q err %v", stdout, stderr, err)
	}
	if !slices.Contains(rec.status, "1 two x") || !slices.Contains(rec.status, "warn") {
		t.Fatalf("logged %q", rec.status)
	}
}

func TestFailingCommandReportsStatusCommandAndOutput(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	key, pub := clientKey(t)
	s := startServer(t, pub, "")
	rec := &recorder{}
	r := rec.runner(keyConn(s, key))
	r.logStdout, r.logStderr = false, false
	cmd := "echo partial; echo boom >&2; exit 3"
	_, _, err := r.run(context.Background(), cmd)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"Process exited with status 3", `running "echo partial; echo boom >&2; exit 3":`, "partial\n", "boom\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if len(rec.status) != 0 {
		t.Errorf("logging off, yet logged %q", rec.status)
	}
}

func TestRefusedEnvironmentFails(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	key, pub := clientKey(t)
	s := startServer(t, pub, "")
	rec := &recorder{}
	r := rec.runner(keyConn(s, key))
	r.env = map[string]string{"DENIED_X": "1"}
	if _, _, err := r.run(context.Background(), "true"); err == nil || !strings.Contains(err.Error(), `could not set environment variable "DENIED_X"`) || len(rec.logs) != 1 {
		t.Fatalf("err %v logs %q", err, rec.logs)
	}
}

func TestDialRetriesUntilTheServerAnswers(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	key, pub := clientKey(t)
	s := startServer(t, pub, "")
	s.dropNext.Store(2) // like sshd not yet up on a booting VM
	rec := &recorder{}
	stdout, _, err := rec.runner(keyConn(s, key)).run(context.Background(), "echo up")
	if err != nil || stdout != "up" || s.dials.Load() != 3 {
		t.Fatalf("stdout %q err %v dials %d", stdout, err, s.dials.Load())
	}
	if !slices.Equal(rec.status[:2], []string{"Dial 1/10 failed: retrying", "Dial 2/10 failed: retrying"}) {
		t.Fatalf("status %q", rec.status)
	}
}

func TestDialErrorLimit(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pw := "pw"
	rec := &recorder{}
	conn := connection{endpoint: endpoint{host: "127.0.0.1", port: port, user: "u", password: &pw, dialErrorLimit: 1, perDialTimeout: 1}}
	_, _, err := rec.runner(conn).run(context.Background(), "true")
	if err == nil || !strings.HasPrefix(err.Error(), "after 1 failed attempts: ") || !slices.Equal(rec.status, []string{"Dial 1/1 failed: retrying"}) {
		t.Fatalf("err %v status %q", err, rec.status)
	}
}

func TestProxyJumpHostWithPasswordTarget(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	key, pub := clientKey(t)
	bastion := startServer(t, pub, "")
	target := startServer(t, nil, "secret")
	pw := "secret"
	conn := connection{
		endpoint: endpoint{host: "127.0.0.1", port: target.port, user: "u", password: &pw, dialErrorLimit: 2, perDialTimeout: 5},
		proxy:    &endpoint{host: "127.0.0.1", port: bastion.port, user: "jump", privateKey: &key, dialErrorLimit: 2, perDialTimeout: 5},
	}
	rec := &recorder{}
	stdout, _, err := rec.runner(conn).run(context.Background(), "echo via bastion")
	if err != nil || stdout != "via bastion" || len(target.commands) != 1 || len(bastion.commands) != 0 {
		t.Fatalf("stdout %q err %v target %q bastion %q", stdout, err, target.commands, bastion.commands)
	}
}

func commandInputs(s *testServer, key string, extra map[string]any) resource.PropertyMap {
	m := resource.NewPropertyMapFromMap(extra)
	m["connection"] = resource.MakeSecret(resource.NewProperty(resource.NewPropertyMapFromMap(map[string]any{
		"host": "127.0.0.1", "port": s.port, "user": "u", "privateKey": key})))
	return m
}

func TestLifecycle(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	key, pub := clientKey(t)
	s := startServer(t, pub, "")
	rc := remoteCommand{}
	call := standin.Call{Ctx: context.Background(), URN: "urn:pulumi:dev::dare::command:remote:Command::host-step"}

	news, failures := rc.Check(nil, commandInputs(s, key, map[string]any{
		"create": "cat", "delete": `test "$(cat)" = params && test "$PULUMI_COMMAND_STDOUT" = updated`,
		"logging": "stdoutAndStderr", "triggers": []any{"v1"},
	}))
	news["stdin"] = resource.MakeSecret(resource.NewProperty("params"))
	conn := standin.Obj(news, "connection")
	if len(failures) != 0 || !news["connection"].IsSecret() || standin.Int(conn, "dialErrorLimit") != 10 || standin.Int(conn, "perDialTimeout") != 15 {
		t.Fatalf("check: %v %v", news, failures)
	}

	preview := call
	preview.Preview = true
	_, outs, err := rc.Create(preview, news)
	if err != nil || !outs["stdout"].ContainsUnknowns() || len(s.commands) != 0 {
		t.Fatalf("preview create: %v %v (ran %q)", outs, err, s.commands)
	}

	id, state, err := rc.Create(call, news)
	if err != nil || !strings.HasPrefix(id, "host-step") || len(id) != len("host-step")+8 {
		t.Fatalf("create: %q %v", id, err)
	}
	if standin.Str(state, "stdout") != "params" || state["stdout"].IsSecret() || !state["stdin"].IsSecret() || !state["connection"].IsSecret() {
		t.Fatalf("create outputs: %v", state)
	}

	// No update command: a change runs create again, with the previous stdout in the environment.
	changed := news.Copy()
	changed["create"] = resource.NewProperty(`echo "again after $PULUMI_COMMAND_STDOUT"`)
	state, err = rc.Update(call, state, changed)
	if err != nil || standin.Str(state, "stdout") != "again after params" {
		t.Fatalf("update via create: %v %v", state, err)
	}
	changed["update"] = resource.NewProperty("echo updated")
	if state, err = rc.Update(call, state, changed); err != nil || standin.Str(state, "stdout") != "updated" {
		t.Fatalf("update: %v %v", state, err)
	}

	if err := rc.Delete(call, state); err != nil { // sees the stored stdin and the last stdout
		t.Fatal(err)
	}

	// addPreviousOutputInEnv=false (as the program sets it) keeps PULUMI_COMMAND_STDOUT unset.
	state["addPreviousOutputInEnv"] = resource.NewProperty(false)
	state["delete"] = resource.NewProperty(`echo "prev=${PULUMI_COMMAND_STDOUT-unset}"; test -z "$PULUMI_COMMAND_STDOUT"`)
	if err := rc.Delete(call, state); err != nil {
		t.Fatal(err)
	}
}

func TestCommandDiff(t *testing.T) {
	old := resource.NewPropertyMapFromMap(map[string]any{"create": "a", "triggers": []any{"v1", 2}, "stdin": "s"})
	old["connection"] = resource.MakeSecret(resource.NewProperty(resource.NewPropertyMapFromMap(map[string]any{"host": "h", "port": 22})))
	cases := []struct {
		name              string
		edit              func(resource.PropertyMap)
		replaces, updates []string
	}{
		{"unchanged", func(resource.PropertyMap) {}, nil, nil},
		{"trigger element", func(m resource.PropertyMap) { m["triggers"] = resource.NewPropertyValue([]any{"v2", 2}) }, []string{"triggers"}, nil},
		{"trigger unknown", func(m resource.PropertyMap) { m["triggers"] = standin.Unknown() }, []string{"triggers"}, nil},
		{"create", func(m resource.PropertyMap) { m["create"] = resource.NewProperty("b") }, nil, []string{"create"}},
		{"stdin unknown", func(m resource.PropertyMap) { m["stdin"] = resource.MakeSecret(standin.Unknown()) }, nil, []string{"stdin"}},
		{"connection host", func(m resource.PropertyMap) {
			m["connection"] = resource.MakeSecret(resource.NewProperty(resource.NewPropertyMapFromMap(map[string]any{"host": "h2", "port": 22})))
		}, nil, []string{"connection"}},
		{"delete added", func(m resource.PropertyMap) { m["delete"] = resource.NewProperty("d") }, nil, []string{"delete"}},
	}
	for _, c := range cases {
		news := old.Copy()
		c.edit(news)
		d, _ := remoteCommand{}.Diff(standin.Call{}, nil, old, news)
		resp := standin.DiffResponse(d)
		var updates []string
		for _, k := range resp.Diffs {
			if !slices.Contains(resp.Replaces, k) {
				updates = append(updates, k)
			}
		}
		if !slices.Equal(resp.Replaces, c.replaces) || !slices.Equal(updates, c.updates) {
			t.Errorf("%s: replaces %v updates %v", c.name, resp.Replaces, updates)
		}
	}
}
