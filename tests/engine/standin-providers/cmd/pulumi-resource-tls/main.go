// Command pulumi-resource-tls is a TEST-ONLY STAND-IN for the pulumi-tls provider plugin (PrivateKey,
// SelfSignedCert, CertRequest, LocallySignedCert), written to the semantics of terraform-provider-tls
// as bridged by pulumi-tls. See ../../README.md.
package main

import (
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"dare.local/standin-providers/internal/standin"
)

// The @pulumi/tls version the program pins.
const version = "5.6.1"

func main() {
	standin.Main("tls", version, map[string]standin.Resource{
		"tls:index/privateKey:PrivateKey":               privateKey,
		"tls:index/selfSignedCert:SelfSignedCert":       selfSignedCert,
		"tls:index/certRequest:CertRequest":             certRequest,
		"tls:index/locallySignedCert:LocallySignedCert": locallySignedCert,
	})
}

var privateKey = &standin.TF{
	Inputs:    []string{"algorithm", "ecdsaCurve", "rsaBits"},
	Required:  []string{"algorithm"},
	Sensitive: []string{"privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"},
	Computed: []string{"privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8", "publicKeyPem", "publicKeyOpenssh",
		"publicKeyFingerprintMd5", "publicKeyFingerprintSha256"},
	Defaults: func(plan resource.PropertyMap) {
		standin.SetDefault(plan, "ecdsaCurve", resource.NewProperty("P224"))
		standin.SetDefault(plan, "rsaBits", resource.NewProperty(2048.0))
	},
	Validate: func(plan resource.PropertyMap) []*pulumirpc.CheckFailure {
		var f []*pulumirpc.CheckFailure
		if a := standin.Str(plan, "algorithm"); a != "RSA" && a != "ECDSA" && a != "ED25519" {
			f = append(f, &pulumirpc.CheckFailure{Property: "algorithm", Reason: "must be one of RSA, ECDSA, ED25519"})
		}
		if _, ok := curves[standin.Str(plan, "ecdsaCurve")]; !ok {
			f = append(f, &pulumirpc.CheckFailure{Property: "ecdsaCurve", Reason: "must be one of P224, P256, P384, P521"})
		}
		return f
	},
	Generate: generateKey,
}

// certDefaults are the schema defaults the two certificate resources share.
func certDefaults(plan resource.PropertyMap) {
	standin.SetDefault(plan, "earlyRenewalHours", resource.NewProperty(0.0))
	for _, k := range []string{"isCaCertificate", "setSubjectKeyId"} {
		standin.SetDefault(plan, k, resource.NewProperty(false))
	}
	// readyForRenewal is planned true when the certificate would be due at once.
	ready := false
	v, e := standin.Plain(plan["validityPeriodHours"]), standin.Plain(plan["earlyRenewalHours"])
	if v.IsNumber() && e.IsNumber() {
		ready = v.NumberValue() == 0 || e.NumberValue() >= v.NumberValue()
	}
	plan["readyForRenewal"] = resource.NewProperty(ready)
}

var selfSignedCert = &standin.TF{
	Inputs: []string{"allowedUses", "dnsNames", "earlyRenewalHours", "ipAddresses", "isCaCertificate", "maxPathLength",
		"privateKeyPem", "setAuthorityKeyId", "setSubjectKeyId", "subject", "uris", "validityPeriodHours"},
	Required:  []string{"allowedUses", "privateKeyPem", "validityPeriodHours"},
	Sensitive: []string{"privateKeyPem"},
	Computed:  []string{"certPem", "keyAlgorithm", "validityStartTime", "validityEndTime"},
	InPlace:   []string{"earlyRenewalHours"}, // the only input without RequiresReplace
	Defaults: func(plan resource.PropertyMap) {
		certDefaults(plan)
		standin.SetDefault(plan, "setAuthorityKeyId", resource.NewProperty(false))
	},
	Validate: validateCert,
	Generate: generateSelfSigned,
	Renew:    renewalDue,
	Refresh:  refreshRenewal,
}

var locallySignedCert = &standin.TF{
	Inputs: []string{"allowedUses", "caCertPem", "caPrivateKeyPem", "certRequestPem", "earlyRenewalHours",
		"isCaCertificate", "maxPathLength", "setSubjectKeyId", "validityPeriodHours"},
	Required:  []string{"allowedUses", "caCertPem", "caPrivateKeyPem", "certRequestPem", "validityPeriodHours"},
	Sensitive: []string{"caPrivateKeyPem"},
	Computed:  []string{"certPem", "caKeyAlgorithm", "validityStartTime", "validityEndTime"},
	InPlace:   []string{"earlyRenewalHours"},
	Defaults:  certDefaults,
	Validate:  validateCert,
	Generate:  generateLocallySigned,
	Renew:     renewalDue,
	Refresh:   refreshRenewal,
}

var certRequest = &standin.TF{
	Inputs:    []string{"dnsNames", "ipAddresses", "privateKeyPem", "subject", "uris"},
	Required:  []string{"privateKeyPem"},
	Sensitive: []string{"privateKeyPem"},
	Computed:  []string{"certRequestPem", "keyAlgorithm"},
	Generate:  generateCertRequest,
}

func validateCert(plan resource.PropertyMap) []*pulumirpc.CheckFailure {
	var f []*pulumirpc.CheckFailure
	for _, u := range standin.Strs(plan, "allowedUses") {
		if _, ok := keyUsages[u]; !ok {
			if _, ok := extKeyUsages[u]; !ok {
				f = append(f, &pulumirpc.CheckFailure{Property: "allowedUses", Reason: "unsupported key usage " + u})
			}
		}
	}
	for _, k := range []string{"validityPeriodHours", "earlyRenewalHours"} {
		if standin.Int(plan, k) < 0 {
			f = append(f, &pulumirpc.CheckFailure{Property: k, Reason: "must be at least 0"})
		}
	}
	return f
}

// renewalDue is Terraform's ModifyPlan: once now ≥ validityEndTime − earlyRenewalHours (the planned
// value), the plan replaces the certificate, reported on readyForRenewal.
func renewalDue(state, plan resource.PropertyMap, now time.Time) bool {
	end, err := time.Parse(time.RFC3339, standin.Str(state, "validityEndTime"))
	early := standin.Plain(plan["earlyRenewalHours"])
	if err != nil || !early.IsNumber() {
		return false
	}
	return !now.Before(end.Add(-time.Duration(early.NumberValue()) * time.Hour))
}

// refreshRenewal is Terraform's Read: a due certificate is stored with readyForRenewal = true.
func refreshRenewal(state resource.PropertyMap, now time.Time) {
	if renewalDue(state, state, now) {
		state["readyForRenewal"] = resource.NewProperty(true)
	}
}
