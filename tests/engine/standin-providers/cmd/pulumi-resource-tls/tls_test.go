package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"golang.org/x/crypto/ssh"

	"dare.local/standin-providers/internal/standin"
)

func props(kv map[string]any) resource.PropertyMap { return resource.NewPropertyMapFromMap(kv) }

func strs(s ...string) resource.PropertyValue {
	return resource.NewPropertyValue(s)
}

func create(t *testing.T, r *standin.TF, in resource.PropertyMap) (string, resource.PropertyMap) {
	t.Helper()
	checked, failures := r.Check(nil, in)
	if len(failures) > 0 {
		t.Fatalf("check failures: %v", failures)
	}
	id, outs, err := r.Create(standin.Call{}, checked)
	if err != nil {
		t.Fatal(err)
	}
	return id, outs
}

func block(t *testing.T, s, typ string) []byte {
	t.Helper()
	b, rest := pem.Decode([]byte(s))
	if b == nil || b.Type != typ || len(bytes.TrimSpace(rest)) != 0 || !strings.HasSuffix(s, "\n") {
		t.Fatalf("want one %q PEM block, got %q", typ, s)
	}
	return b.Bytes
}

func TestPrivateKeyFormats(t *testing.T) {
	cases := []struct {
		in      map[string]any
		pemType string
		parse   func([]byte) (any, error)
		sshType string
	}{
		{map[string]any{"algorithm": "ECDSA", "ecdsaCurve": "P256"}, "EC PRIVATE KEY", func(b []byte) (any, error) { return x509.ParseECPrivateKey(b) }, "ecdsa-sha2-nistp256"},
		{map[string]any{"algorithm": "ED25519"}, "PRIVATE KEY", x509.ParsePKCS8PrivateKey, "ssh-ed25519"},
		{map[string]any{"algorithm": "RSA", "rsaBits": 2048}, "RSA PRIVATE KEY", func(b []byte) (any, error) { return x509.ParsePKCS1PrivateKey(b) }, "ssh-rsa"},
	}
	for _, c := range cases {
		id, outs := create(t, privateKey, props(c.in))
		for _, k := range []string{"privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"} {
			if !outs[resource.PropertyKey(k)].IsSecret() {
				t.Errorf("%v: %s not secret", c.in, k)
			}
		}
		key, err := c.parse(block(t, standin.Str(outs, "privateKeyPem"), c.pemType))
		if err != nil {
			t.Fatalf("%v: %v", c.in, err)
		}
		if _, err := x509.ParsePKCS8PrivateKey(block(t, standin.Str(outs, "privateKeyPemPkcs8"), "PRIVATE KEY")); err != nil {
			t.Fatal(err)
		}
		if _, err := ssh.ParseRawPrivateKey([]byte(standin.Str(outs, "privateKeyOpenssh"))); err != nil {
			t.Fatal(err)
		}
		pubDER := block(t, standin.Str(outs, "publicKeyPem"), "PUBLIC KEY")
		pub, err := x509.ParsePKIXPublicKey(pubDER)
		if err != nil || !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.(crypto.Signer).Public()) {
			t.Fatalf("%v: public key does not match: %v", c.in, err)
		}
		authorized, _, _, _, err := ssh.ParseAuthorizedKey([]byte(standin.Str(outs, "publicKeyOpenssh")))
		if err != nil || authorized.Type() != c.sshType || !strings.HasSuffix(standin.Str(outs, "publicKeyOpenssh"), "\n") ||
			standin.Str(outs, "publicKeyFingerprintSha256") != ssh.FingerprintSHA256(authorized) ||
			standin.Str(outs, "publicKeyFingerprintMd5") != ssh.FingerprintLegacyMD5(authorized) {
			t.Fatalf("%v: openssh public key / fingerprints wrong: %v", c.in, err)
		}
		if id != hashForState(string(pubDER)) || len(id) != 40 {
			t.Errorf("%v: id %q", c.in, id)
		}
	}
}

func TestP224HasNoOpenSSHForms(t *testing.T) {
	_, outs := create(t, privateKey, props(map[string]any{"algorithm": "ECDSA"})) // default curve P224
	if standin.Str(outs, "ecdsaCurve") != "P224" || standin.Str(outs, "privateKeyOpenssh") != "" || standin.Str(outs, "publicKeyOpenssh") != "" {
		t.Fatalf("%v", outs)
	}
}

// pki builds what components/cluster/pki.ts builds: an ECDSA CA, a client key, its request and the signed cert.
func pki(t *testing.T) (ca, cert resource.PropertyMap) {
	_, caKey := create(t, privateKey, props(map[string]any{"algorithm": "ECDSA", "ecdsaCurve": "P256"}))
	_, ca = create(t, selfSignedCert, resource.PropertyMap{
		"privateKeyPem":       caKey["privateKeyPem"],
		"subject":             resource.NewProperty(props(map[string]any{"commonName": "kubernetes"})),
		"isCaCertificate":     resource.NewProperty(true),
		"validityPeriodHours": resource.NewProperty(87600.0),
		"allowedUses":         strs("cert_signing", "crl_signing", "digital_signature", "key_encipherment"),
	})
	_, key := create(t, privateKey, props(map[string]any{"algorithm": "ECDSA", "ecdsaCurve": "P256"}))
	_, csr := create(t, certRequest, resource.PropertyMap{"privateKeyPem": key["privateKeyPem"],
		"subject": resource.NewProperty(props(map[string]any{"commonName": "kubernetes-admin", "organization": "kubeadm:cluster-admins"}))})
	_, cert = create(t, locallySignedCert, props(map[string]any{
		"certRequestPem": standin.Str(csr, "certRequestPem"), "caPrivateKeyPem": standin.Str(caKey, "privateKeyPem"),
		"caCertPem": standin.Str(ca, "certPem"), "validityPeriodHours": 8760, "earlyRenewalHours": 720,
		"allowedUses": []any{"digital_signature", "key_encipherment", "client_auth"},
	}))
	return ca, cert
}

func TestLocallySignedCertVerifiesAgainstCA(t *testing.T) {
	caOuts, certOuts := pki(t)
	ca, err := x509.ParseCertificate(block(t, standin.Str(caOuts, "certPem"), "CERTIFICATE"))
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || ca.Subject.CommonName != "kubernetes" || ca.KeyUsage&x509.KeyUsageCertSign == 0 || len(ca.SubjectKeyId) != 20 ||
		!caOuts["privateKeyPem"].IsSecret() || standin.Str(caOuts, "keyAlgorithm") != "ECDSA" || standin.Bool(caOuts, "readyForRenewal") {
		t.Fatalf("CA: %+v %v", ca, caOuts)
	}
	if _, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || ca.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Fatalf("CA key %T alg %v", ca.PublicKey, ca.SignatureAlgorithm)
	}
	cert, err := x509.ParseCertificate(block(t, standin.Str(certOuts, "certPem"), "CERTIFICATE"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	if cert.IsCA || cert.Subject.CommonName != "kubernetes-admin" || !slices.Equal(cert.Subject.Organization, []string{"kubeadm:cluster-admins"}) ||
		!bytes.Equal(cert.AuthorityKeyId, ca.SubjectKeyId) || cert.NotAfter.Sub(cert.NotBefore) != 8760*time.Hour {
		t.Fatalf("cert: %+v", cert)
	}
	end, err := time.Parse(time.RFC3339, standin.Str(certOuts, "validityEndTime"))
	if err != nil || !end.Truncate(time.Second).Equal(cert.NotAfter) || !certOuts["caPrivateKeyPem"].IsSecret() {
		t.Fatalf("validityEndTime %q vs %v: %v", standin.Str(certOuts, "validityEndTime"), cert.NotAfter, err)
	}
}

func TestEarlyRenewal(t *testing.T) {
	_, state := pki(t)
	inputs := state.Copy()
	for _, k := range locallySignedCert.Computed {
		delete(inputs, resource.PropertyKey(k))
	}
	replaces := func(state, news resource.PropertyMap) ([]string, []string) {
		d, _ := locallySignedCert.Diff(standin.Call{}, state, nil, news)
		resp := standin.DiffResponse(d)
		return resp.Replaces, resp.Diffs
	}
	if r, d := replaces(state, inputs); r != nil || d != nil {
		t.Fatalf("fresh cert: replaces %v diffs %v", r, d)
	}
	// Changing earlyRenewalHours is an in-place update while the renewal window is not reached.
	longer := inputs.Copy()
	longer["earlyRenewalHours"] = resource.NewProperty(1000.0)
	if r, d := replaces(state, longer); r != nil || !slices.Equal(d, []string{"earlyRenewalHours"}) {
		t.Fatalf("earlyRenewalHours change: replaces %v diffs %v", r, d)
	}
	// 719 h before the end the 720 h window has begun: the next diff replaces.
	due := state.Copy()
	due["validityEndTime"] = resource.NewProperty(time.Now().Add(719 * time.Hour).Format(time.RFC3339))
	if r, _ := replaces(due, inputs); !slices.Equal(r, []string{"readyForRenewal"}) {
		t.Fatalf("due cert: replaces %v", r)
	}
	due["validityEndTime"] = resource.NewProperty(time.Now().Add(721 * time.Hour).Format(time.RFC3339))
	if r, _ := replaces(due, inputs); r != nil {
		t.Fatalf("not yet due: replaces %v", r)
	}
	// A refresh of a due certificate records readyForRenewal.
	due["validityEndTime"] = resource.NewProperty(time.Now().Add(-time.Hour).Format(time.RFC3339))
	refreshed, _, _ := locallySignedCert.Read(standin.Call{}, due, inputs)
	if !standin.Bool(refreshed, "readyForRenewal") {
		t.Fatal("refresh did not mark readyForRenewal")
	}
}

func TestCertInputsForceReplacement(t *testing.T) {
	_, key := create(t, privateKey, props(map[string]any{"algorithm": "ED25519"}))
	in := resource.PropertyMap{"privateKeyPem": key["privateKeyPem"], "validityPeriodHours": resource.NewProperty(24.0),
		"allowedUses": strs("server_auth"), "dnsNames": strs("a.example"), "ipAddresses": strs("10.0.0.1")}
	_, state := create(t, selfSignedCert, in)
	cert, err := x509.ParseCertificate(block(t, standin.Str(state, "certPem"), "CERTIFICATE"))
	if err != nil || cert.DNSNames[0] != "a.example" || !cert.IPAddresses[0].Equal([]byte{10, 0, 0, 1}) || cert.SignatureAlgorithm != x509.PureEd25519 {
		t.Fatalf("%+v %v", cert, err)
	}
	for k, v := range map[string]resource.PropertyValue{
		"privateKeyPem": resource.MakeSecret(standin.Unknown()), "validityPeriodHours": resource.NewProperty(48.0),
		"dnsNames": resource.NewProperty([]resource.PropertyValue{standin.Unknown()}), "isCaCertificate": resource.NewProperty(true),
	} {
		news := in.Copy()
		news[resource.PropertyKey(k)] = v
		checked, _ := selfSignedCert.Check(nil, news)
		d, _ := selfSignedCert.Diff(standin.Call{}, state, nil, checked)
		if r := standin.DiffResponse(d).Replaces; !slices.Equal(r, []string{k}) {
			t.Errorf("%s: replaces %v", k, r)
		}
	}
}
