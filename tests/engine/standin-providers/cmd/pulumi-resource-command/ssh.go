package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/retry"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"dare.local/standin-providers/internal/standin"
)

// endpoint is one SSH hop. Optional settings are pointers because upstream acts on presence: a
// password that is set (even empty) adds password auth.
type endpoint struct {
	host, user                                                     string
	port, dialErrorLimit, perDialTimeout                           int
	password, privateKey, privateKeyPassword, agentSocket, hostKey *string
}

type connection struct {
	endpoint
	proxy *endpoint
}

// parseEndpoint reads a checked connection (Check has filled the defaults).
func parseEndpoint(m resource.PropertyMap) endpoint {
	opt := func(k string) *string {
		if s := standin.Str(m, k); standin.Set(m, k) {
			return &s
		}
		return nil
	}
	return endpoint{host: standin.Str(m, "host"), user: standin.Str(m, "user"), port: int(standin.Int(m, "port")),
		dialErrorLimit: int(standin.Int(m, "dialErrorLimit")), perDialTimeout: int(standin.Int(m, "perDialTimeout")),
		password: opt("password"), privateKey: opt("privateKey"), privateKeyPassword: opt("privateKeyPassword"),
		agentSocket: opt("agentSocketPath"), hostKey: opt("hostKey")}
}

func parseConnection(m resource.PropertyMap) connection {
	c := connection{endpoint: parseEndpoint(m)}
	if standin.Set(m, "proxy") {
		p := parseEndpoint(standin.Obj(m, "proxy"))
		c.proxy = &p
	}
	return c
}

func (e endpoint) addr() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// config follows v1.2.1's connection.go: the host key is checked only when hostKey is given
// (otherwise any key is accepted); auth methods are the private key, then the password (also as
// keyboard-interactive answers), then the agent at agentSocketPath or $SSH_AUTH_SOCK.
func (e endpoint) config() (*ssh.ClientConfig, error) {
	cfg := &ssh.ClientConfig{User: e.user, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout: time.Duration(e.perDialTimeout) * time.Second}
	if e.hostKey != nil {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*e.hostKey))
		if err != nil {
			return nil, fmt.Errorf("failed to parse host key: %w", err)
		}
		cfg.HostKeyCallback, cfg.HostKeyAlgorithms = ssh.FixedHostKey(key), []string{key.Type()}
	}
	if e.privateKey != nil {
		var signer ssh.Signer
		var err error
		if e.privateKeyPassword != nil {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*e.privateKey), []byte(*e.privateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*e.privateKey))
		}
		if err != nil {
			return nil, err
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeys(signer))
	}
	if e.password != nil {
		pw := *e.password
		cfg.Auth = append(cfg.Auth, ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			answers := make([]string, len(qs))
			for i := range answers {
				answers[i] = pw
			}
			return answers, nil
		}))
	}
	sock := e.agentSocket
	if s := os.Getenv("SSH_AUTH_SOCK"); sock == nil && s != "" {
		sock = &s
	}
	if sock != nil {
		conn, err := net.Dial("unix", *sock)
		if err != nil {
			return nil, err
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
	}
	return cfg, nil
}

// withRetry follows upstream's dialWithRetry: up to limit failures are retried (-1: no limit) with the
// SDK's default backoff (100ms × 1.5, at most 5s), each reported as a status line.
func withRetry[T any](ctx context.Context, status func(string), what string, limit int, f func() (T, error)) (T, error) {
	ok, data, err := retry.Until(ctx, retry.Acceptor{Accept: func(try int, _ time.Duration) (bool, any, error) {
		v, err := f()
		if err == nil {
			return true, v, nil
		}
		if limit > -1 && try+1 > limit {
			return true, nil, fmt.Errorf("after %d failed attempts: %w", try, err)
		}
		of := strconv.Itoa(limit)
		if limit == -1 {
			of = "inf"
		}
		status(fmt.Sprintf("%s %d/%s failed: retrying", what, try+1, of))
		return false, nil, nil
	}})
	if ok && err == nil {
		return data.(T), nil
	}
	if err == nil {
		err = ctx.Err()
	}
	var zero T
	return zero, err
}

// dial connects directly or through the proxy: proxy dial, then the proxy's TCP forward to the host,
// then the SSH handshake over it, each step retried on its own as upstream does.
func (c connection) dial(ctx context.Context, status func(string)) (*ssh.Client, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	if c.proxy == nil {
		return withRetry(ctx, status, "Dial", c.dialErrorLimit, func() (*ssh.Client, error) { return ssh.Dial("tcp", c.addr(), cfg) })
	}
	client, err := c.viaProxy(ctx, status, cfg)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return client, nil
}

func (c connection) viaProxy(ctx context.Context, status func(string), cfg *ssh.ClientConfig) (*ssh.Client, error) {
	proxyCfg, err := c.proxy.config()
	if err != nil {
		return nil, err
	}
	proxy, err := withRetry(ctx, status, "Dial proxy", c.proxy.dialErrorLimit, func() (*ssh.Client, error) {
		return ssh.Dial("tcp", c.proxy.addr(), proxyCfg)
	})
	if err != nil {
		return nil, err
	}
	conn, err := withRetry(ctx, status, "Dial from proxy", c.dialErrorLimit, func() (net.Conn, error) { return proxy.Dial("tcp", c.addr()) })
	var chans <-chan ssh.NewChannel
	var reqs <-chan *ssh.Request
	var sconn ssh.Conn
	if err == nil {
		sconn, err = withRetry(ctx, status, "Dial", c.dialErrorLimit, func() (ssh.Conn, error) {
			sc, ch, rq, err := ssh.NewClientConn(conn, c.addr(), cfg)
			chans, reqs = ch, rq
			return sc, err
		})
	}
	if err != nil {
		proxy.Close()
		return nil, err
	}
	client := ssh.NewClient(sconn, chans, reqs)
	go func() { _ = client.Wait(); proxy.Close() }()
	return client, nil
}

// runner runs one command over SSH the way v1.2.1's commandOutputs.go does.
type runner struct {
	conn                   connection
	stdin                  string
	env                    map[string]string
	prevStdout, prevStderr string // exported as PULUMI_COMMAND_STDOUT/STDERR when non-empty
	logStdout, logStderr   bool
	status                 func(string)
	log                    func(diag.Severity, string)
}

func (r *runner) setenvFailed(sev diag.Severity, key string) {
	r.log(sev, fmt.Sprintf("Unable to set '%s'. This only works if your SSH server is configured to accept "+
		"these variables via AcceptEnv. Alternatively, if a Bash-like shell runs the command on the remote host, "+
		"you could prefix the command itself with the variables in the form 'VAR=value command'", key))
}

// run returns stdout and stderr without one trailing newline; a failure carries the exit status, the
// command and the interleaved output, as upstream reports it.
func (r *runner) run(ctx context.Context, cmd string) (string, string, error) {
	client, err := r.conn.dial(ctx, r.status)
	if err != nil {
		return "", "", err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return "", "", err
	}
	defer session.Close()

	for _, k := range slices.Sorted(maps.Keys(r.env)) {
		if err := session.Setenv(k, r.env[k]); err != nil {
			r.setenvFailed(diag.Error, k)
			return "", "", fmt.Errorf("could not set environment variable %q: %w", k, err)
		}
	}
	// Previous outputs are optional: a server that refuses them only earns a warning.
	for k, v := range map[string]string{"PULUMI_COMMAND_STDOUT": r.prevStdout, "PULUMI_COMMAND_STDERR": r.prevStderr} {
		if v != "" && session.Setenv(k, v) != nil {
			r.setenvFailed(diag.Warning, k)
		}
	}
	if r.stdin != "" {
		session.Stdin = strings.NewReader(r.stdin)
	}

	var stdout, stderr bytes.Buffer
	combined := &syncBuffer{}
	logR, logW := io.Pipe()
	outs, errs := []io.Writer{&stdout, combined}, []io.Writer{&stderr, combined}
	if r.logStdout {
		outs = append(outs, logW)
	}
	if r.logStderr {
		errs = append(errs, logW)
	}
	session.Stdout, session.Stderr = io.MultiWriter(outs...), io.MultiWriter(errs...)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(logR)
		for sc.Scan() {
			r.status(sc.Text())
		}
		_, _ = io.Copy(io.Discard, logR) // keep draining after an over-long line
	}()

	err = session.Run(cmd)
	logW.Close()
	<-logged
	if err != nil {
		return "", "", fmt.Errorf("%w: running %q:\n%s", err, cmd, combined.buf.String())
	}
	return strings.TrimSuffix(stdout.String(), "\n"), strings.TrimSuffix(stderr.String(), "\n"), nil
}

// syncBuffer collects stdout and stderr, which the SSH library copies from two goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
