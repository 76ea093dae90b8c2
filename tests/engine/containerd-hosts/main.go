// containerd-hosts resolves a registry's hosts the way containerd 2.x's CRI does for a pull: containerd's own
// loader of <config_path>/<registry>/hosts.toml (core/remotes/docker/config, ConfigureHosts with HostDirFromRoot),
// at the version the hosts run. It prints, as JSON, each host in the order containerd tries them: scheme, host,
// API path, capabilities, and whether a certificate (LEAF, PEM) verifies against that host's trusted CAs.
//
// Usage: containerd-hosts CONFIG_PATH REGISTRY [LEAF_PEM_FILE]
package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
)

type resolved struct {
	Scheme       string   `json:"scheme"`
	Host         string   `json:"host"`
	Path         string   `json:"path"`
	Capabilities []string `json:"capabilities"`
	// LeafTrusted: the certificate given verifies against the host's root CAs (nil without one).
	LeafTrusted *bool `json:"leafTrusted,omitempty"`
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: containerd-hosts CONFIG_PATH REGISTRY [LEAF_PEM_FILE]")
		os.Exit(2)
	}
	var leaf *x509.Certificate
	if len(os.Args) > 3 {
		data, err := os.ReadFile(os.Args[3])
		if err != nil {
			fail(err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			fail(fmt.Errorf("%s: no PEM block", os.Args[3]))
		}
		if leaf, err = x509.ParseCertificate(block.Bytes); err != nil {
			fail(err)
		}
	}
	hosts, err := config.ConfigureHosts(context.Background(), config.HostOptions{HostDir: config.HostDirFromRoot(os.Args[1])})(os.Args[2])
	if err != nil {
		fail(err)
	}
	out := []resolved{}
	for _, h := range hosts {
		r := resolved{Scheme: h.Scheme, Host: h.Host, Path: h.Path, Capabilities: capabilities(h.Capabilities)}
		if leaf != nil {
			trusted := false
			if t, ok := h.Client.Transport.(*http.Transport); ok && t.TLSClientConfig != nil && t.TLSClientConfig.RootCAs != nil {
				_, verr := leaf.Verify(x509.VerifyOptions{Roots: t.TLSClientConfig.RootCAs})
				trusted = verr == nil
			}
			r.LeafTrusted = &trusted
		}
		out = append(out, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func capabilities(c docker.HostCapabilities) []string {
	names := []string{}
	for _, n := range []struct {
		flag docker.HostCapabilities
		name string
	}{{docker.HostCapabilityPull, "pull"}, {docker.HostCapabilityResolve, "resolve"}, {docker.HostCapabilityPush, "push"}} {
		if c.Has(n.flag) {
			names = append(names, n.name)
		}
	}
	return names
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
