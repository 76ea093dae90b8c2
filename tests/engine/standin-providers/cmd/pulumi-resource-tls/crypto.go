package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"golang.org/x/crypto/ssh"

	"dare.local/standin-providers/internal/standin"
)

var curves = map[string]elliptic.Curve{"P224": elliptic.P224(), "P256": elliptic.P256(), "P384": elliptic.P384(), "P521": elliptic.P521()}

// The allowedUses names of the Terraform schema.
var keyUsages = map[string]x509.KeyUsage{
	"digital_signature": x509.KeyUsageDigitalSignature, "content_commitment": x509.KeyUsageContentCommitment,
	"key_encipherment": x509.KeyUsageKeyEncipherment, "data_encipherment": x509.KeyUsageDataEncipherment,
	"key_agreement": x509.KeyUsageKeyAgreement, "cert_signing": x509.KeyUsageCertSign, "crl_signing": x509.KeyUsageCRLSign,
	"encipher_only": x509.KeyUsageEncipherOnly, "decipher_only": x509.KeyUsageDecipherOnly,
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"any_extended": x509.ExtKeyUsageAny, "server_auth": x509.ExtKeyUsageServerAuth, "client_auth": x509.ExtKeyUsageClientAuth,
	"code_signing": x509.ExtKeyUsageCodeSigning, "email_protection": x509.ExtKeyUsageEmailProtection,
	"ipsec_end_system": x509.ExtKeyUsageIPSECEndSystem, "ipsec_tunnel": x509.ExtKeyUsageIPSECTunnel,
	"ipsec_user": x509.ExtKeyUsageIPSECUser, "timestamping": x509.ExtKeyUsageTimeStamping,
	"ocsp_signing": x509.ExtKeyUsageOCSPSigning, "microsoft_server_gated_crypto": x509.ExtKeyUsageMicrosoftServerGatedCrypto,
	"netscape_server_gated_crypto":      x509.ExtKeyUsageNetscapeServerGatedCrypto,
	"microsoft_commercial_code_signing": x509.ExtKeyUsageMicrosoftCommercialCodeSigning,
	"microsoft_kernel_code_signing":     x509.ExtKeyUsageMicrosoftKernelCodeSigning,
}

func pemString(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// hashForState is the provider's id for keys and requests: SHA-1 hex of the trimmed value.
func hashForState(s string) string {
	sum := sha1.Sum([]byte(strings.TrimSpace(s)))
	return hex.EncodeToString(sum[:])
}

func generateKey(plan resource.PropertyMap) (string, resource.PropertyMap, error) {
	var key crypto.Signer
	var err error
	switch standin.Str(plan, "algorithm") {
	case "RSA":
		key, err = rsa.GenerateKey(rand.Reader, int(standin.Int(plan, "rsaBits")))
	case "ECDSA":
		key, err = ecdsa.GenerateKey(curves[standin.Str(plan, "ecdsaCurve")], rand.Reader)
	case "ED25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("key algorithm %q is not supported", standin.Str(plan, "algorithm"))
	}
	if err != nil {
		return "", nil, err
	}
	return keyOutputs(key)
}

// keyOutputs writes a key the way terraform-provider-tls does: privateKeyPem is PKCS#1 for RSA, SEC 1
// for ECDSA and PKCS#8 for ED25519; the OpenSSH forms are empty for P-224, which SSH does not support.
func keyOutputs(key crypto.Signer) (string, resource.PropertyMap, error) {
	var privPEM string
	switch k := key.(type) {
	case *rsa.PrivateKey:
		privPEM = pemString("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k))
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return "", nil, err
		}
		privPEM = pemString("EC PRIVATE KEY", der)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", nil, err
	}
	if privPEM == "" {
		privPEM = pemString("PRIVATE KEY", pkcs8)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", nil, err
	}
	var privSSH, pubSSH, md5, sha256 string
	if sshPub, err := ssh.NewPublicKey(key.Public()); err == nil {
		block, err := ssh.MarshalPrivateKey(key, "")
		if err != nil {
			return "", nil, err
		}
		privSSH = string(pem.EncodeToMemory(block))
		pubSSH = string(ssh.MarshalAuthorizedKey(sshPub))
		md5, sha256 = ssh.FingerprintLegacyMD5(sshPub), ssh.FingerprintSHA256(sshPub)
	}
	return hashForState(string(pubDER)), resource.NewPropertyMapFromMap(map[string]any{
		"privateKeyPem": privPEM, "privateKeyPemPkcs8": pemString("PRIVATE KEY", pkcs8), "privateKeyOpenssh": privSSH,
		"publicKeyPem": pemString("PUBLIC KEY", pubDER), "publicKeyOpenssh": pubSSH,
		"publicKeyFingerprintMd5": md5, "publicKeyFingerprintSha256": sha256,
	}), nil
}

// parsePrivateKey reads the PEM forms the provider itself writes, and names the algorithm.
func parsePrivateKey(s string) (crypto.Signer, string, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, "", errors.New("failed to decode PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		err = fmt.Errorf("unsupported PEM preamble %q", block.Type)
	}
	if err != nil {
		return nil, "", err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, "RSA", nil
	case *ecdsa.PrivateKey:
		return k, "ECDSA", nil
	case ed25519.PrivateKey:
		return k, "ED25519", nil
	}
	return nil, "", fmt.Errorf("unsupported private key type %T", key)
}

// subjectName maps the subject object; organization etc. are single strings in the schema.
func subjectName(s resource.PropertyMap) pkix.Name {
	one := func(k string) []string {
		if v := standin.Str(s, k); v != "" {
			return []string{v}
		}
		return nil
	}
	n := pkix.Name{CommonName: standin.Str(s, "commonName"), Organization: one("organization"),
		OrganizationalUnit: one("organizationalUnit"), StreetAddress: standin.Strs(s, "streetAddresses"),
		Locality: one("locality"), Province: one("province"), Country: one("country"), PostalCode: one("postalCode"),
		SerialNumber: standin.Str(s, "serialNumber")}
	if e := standin.Str(s, "emailAddress"); e != "" {
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1},
			Value: asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(e)}})
	}
	return n
}

// template holds the subject and the DNS, IP and URI names of a self-signed cert or a request.
func template(plan resource.PropertyMap) (*x509.Certificate, error) {
	t := &x509.Certificate{Subject: subjectName(standin.Obj(plan, "subject")), DNSNames: standin.Strs(plan, "dnsNames")}
	for _, s := range standin.Strs(plan, "ipAddresses") {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("invalid IP address %q", s)
		}
		t.IPAddresses = append(t.IPAddresses, ip)
	}
	for _, s := range standin.Strs(plan, "uris") {
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		t.URIs = append(t.URIs, u)
	}
	return t, nil
}

// subjectKeyID hashes the public key bytes as terraform-provider-tls does (SHA-1).
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	var b []byte
	var err error
	switch k := pub.(type) {
	case *rsa.PublicKey:
		b, err = asn1.Marshal(*k)
	case *ecdsa.PublicKey:
		b, err = k.Bytes()
	case ed25519.PublicKey:
		b, err = asn1.Marshal(k)
	default:
		err = fmt.Errorf("unsupported public key type %T", pub)
	}
	sum := sha1.Sum(b)
	return sum[:], err
}

// certificate completes the template from the plan and signs it: validity from now, a random 128-bit
// serial (also the id), allowed uses, CA flag and key ids.
func certificate(plan resource.PropertyMap, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (string, resource.PropertyMap, error) {
	tmpl.BasicConstraintsValid = true
	tmpl.NotBefore = time.Now()
	tmpl.NotAfter = tmpl.NotBefore.Add(time.Duration(standin.Int(plan, "validityPeriodHours")) * time.Hour)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return "", nil, err
	}
	tmpl.SerialNumber = serial
	for _, u := range standin.Strs(plan, "allowedUses") {
		tmpl.KeyUsage |= keyUsages[u]
		if e, ok := extKeyUsages[u]; ok {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, e)
		}
	}
	if standin.Bool(plan, "isCaCertificate") || standin.Bool(plan, "setSubjectKeyId") {
		if standin.Bool(plan, "isCaCertificate") {
			if tmpl.Subject.String() == "" {
				return "", nil, errors.New("must contain at least one Distinguished Name when creating Certificate Authority (CA)")
			}
			tmpl.IsCA = true
		}
		if tmpl.SubjectKeyId, err = subjectKeyID(pub); err != nil {
			return "", nil, err
		}
	}
	if v := standin.Plain(plan["maxPathLength"]); v.IsNumber() && v.NumberValue() >= 0 {
		tmpl.MaxPathLen = int(v.NumberValue())
	}
	if standin.Bool(plan, "setAuthorityKeyId") { // self-signed only: the parent is the template
		if len(parent.SubjectKeyId) == 0 {
			return "", nil, errors.New("could not determine Authority Key Identifier")
		}
		tmpl.AuthorityKeyId = parent.SubjectKeyId
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return "", nil, err
	}
	start, _ := tmpl.NotBefore.MarshalText()
	end, _ := tmpl.NotAfter.MarshalText()
	return serial.String(), resource.NewPropertyMapFromMap(map[string]any{"certPem": pemString("CERTIFICATE", der),
		"validityStartTime": string(start), "validityEndTime": string(end)}), nil
}

func generateSelfSigned(plan resource.PropertyMap) (string, resource.PropertyMap, error) {
	key, alg, err := parsePrivateKey(standin.Str(plan, "privateKeyPem"))
	if err != nil {
		return "", nil, fmt.Errorf("failed to parse private key PEM: %w", err)
	}
	tmpl, err := template(plan)
	if err != nil {
		return "", nil, err
	}
	id, outs, err := certificate(plan, tmpl, tmpl, key.Public(), key)
	if outs != nil {
		outs["keyAlgorithm"] = resource.NewProperty(alg)
	}
	return id, outs, err
}

func generateLocallySigned(plan resource.PropertyMap) (string, resource.PropertyMap, error) {
	reqBlock, _ := pem.Decode([]byte(standin.Str(plan, "certRequestPem")))
	caBlock, _ := pem.Decode([]byte(standin.Str(plan, "caCertPem")))
	if reqBlock == nil || caBlock == nil {
		return "", nil, errors.New("failed to decode the certificate request or CA certificate PEM")
	}
	req, err := x509.ParseCertificateRequest(reqBlock.Bytes)
	if err != nil {
		return "", nil, err
	}
	ca, err := x509.ParseCertificate(caBlock.Bytes)
	if err != nil {
		return "", nil, err
	}
	caKey, alg, err := parsePrivateKey(standin.Str(plan, "caPrivateKeyPem"))
	if err != nil {
		return "", nil, fmt.Errorf("failed to parse CA private key PEM: %w", err)
	}
	// Subject and names come from the request; Go copies the CA's key id into AuthorityKeyId.
	tmpl := &x509.Certificate{Subject: req.Subject, DNSNames: req.DNSNames, IPAddresses: req.IPAddresses, URIs: req.URIs}
	id, outs, err := certificate(plan, tmpl, ca, req.PublicKey, caKey)
	if outs != nil {
		outs["caKeyAlgorithm"] = resource.NewProperty(alg)
	}
	return id, outs, err
}

func generateCertRequest(plan resource.PropertyMap) (string, resource.PropertyMap, error) {
	key, alg, err := parsePrivateKey(standin.Str(plan, "privateKeyPem"))
	if err != nil {
		return "", nil, fmt.Errorf("failed to parse private key PEM: %w", err)
	}
	t, err := template(plan)
	if err != nil {
		return "", nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: t.Subject, DNSNames: t.DNSNames, IPAddresses: t.IPAddresses, URIs: t.URIs}, key)
	if err != nil {
		return "", nil, err
	}
	return hashForState(string(der)), resource.NewPropertyMapFromMap(map[string]any{
		"certRequestPem": pemString("CERTIFICATE REQUEST", der), "keyAlgorithm": alg}), nil
}
