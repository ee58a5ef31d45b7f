package deploy_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

const k8sDir = "k8s"

// Just the parts of the Kubernetes objects the test looks at.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	SecurityContext struct {
		RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
		RunAsUser    *int64 `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Args    []string `yaml:"args"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		ReadOnlyRootFilesystem *bool `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

func readObjects(t *testing.T, path string) []k8sObject {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var objs []k8sObject
	dec := yaml.NewDecoder(f)
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if o.Kind == "" || o.APIVersion == "" {
			t.Fatalf("%s: document without apiVersion/kind", path)
		}
		objs = append(objs, o)
	}
}

// kustomizeResources returns the files listed in k8s/kustomization.yaml.
func kustomizeResources(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	return k.Resources
}

// k8sWorkloads maps each boost service to its workload object.
func k8sWorkloads(t *testing.T) (map[string]k8sObject, map[string]k8sObject) {
	t.Helper()
	workloads := map[string]k8sObject{}
	all := map[string]k8sObject{}
	for _, file := range append(kustomizeResources(t), "secret.example.yaml") {
		for _, o := range readObjects(t, filepath.Join(k8sDir, file)) {
			all[o.Kind+"/"+o.Metadata.Name] = o
			if o.Kind == "Deployment" || o.Kind == "Job" {
				if len(o.Spec.Template.Spec.Containers) != 1 {
					t.Fatalf("%s/%s: want exactly one container", o.Kind, o.Metadata.Name)
				}
				args := o.Spec.Template.Spec.Containers[0].Args
				if len(args) == 0 {
					t.Fatalf("%s/%s: container has no args (boost subcommand)", o.Kind, o.Metadata.Name)
				}
				workloads[args[0]] = o
			}
		}
	}
	return workloads, all
}

func TestK8sKustomization(t *testing.T) {
	res := kustomizeResources(t)
	want := []string{
		"namespace.yaml", "configmap.yaml", "migrate-job.yaml",
		"api.yaml", "worker.yaml", "bridge.yaml", "projector.yaml",
	}
	for _, f := range want {
		if !slices.Contains(res, f) {
			t.Errorf("kustomization.yaml does not list %s", f)
		}
	}
	if slices.Contains(res, "secret.example.yaml") {
		t.Error("kustomization.yaml must not apply the placeholder secret.example.yaml")
	}
	for _, f := range res {
		readObjects(t, filepath.Join(k8sDir, f)) // must exist and parse
	}
}

// envFor resolves the variable names a container receives.
func envFor(c container, all map[string]k8sObject) (map[string]bool, error) {
	env := map[string]bool{}
	for _, ef := range c.EnvFrom {
		var src k8sObject
		var ok bool
		switch {
		case ef.ConfigMapRef != nil:
			src, ok = all["ConfigMap/"+ef.ConfigMapRef.Name]
		case ef.SecretRef != nil:
			src, ok = all["Secret/"+ef.SecretRef.Name]
		}
		if !ok {
			return nil, fmt.Errorf("envFrom refers to an unknown ConfigMap/Secret")
		}
		for k := range src.Data {
			env[k] = true
		}
		for k := range src.StringData {
			env[k] = true
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value != ""
		case e.ValueFrom.SecretKeyRef != nil:
			s := all["Secret/"+e.ValueFrom.SecretKeyRef.Name]
			_, ok := s.StringData[e.ValueFrom.SecretKeyRef.Key]
			env[e.Name] = ok
		case e.ValueFrom.ConfigMapKeyRef != nil:
			cm := all["ConfigMap/"+e.ValueFrom.ConfigMapKeyRef.Name]
			_, ok := cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]
			env[e.Name] = ok
		}
	}
	return env, nil
}

func TestK8sWorkloads(t *testing.T) {
	workloads, all := k8sWorkloads(t)
	wantReplicas := map[string]int{"api": 2, "worker": 2, "bridge": 1, "projector": 2}

	for _, svc := range boostSvcs {
		t.Run(svc, func(t *testing.T) {
			o, ok := workloads[svc]
			if !ok {
				t.Fatalf("no workload runs `boost %s`", svc)
			}
			pod := o.Spec.Template.Spec
			c := pod.Containers[0]

			env, err := envFor(c, all)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range envTable {
				if slices.Contains(e.services, svc) && !env[e.name] {
					t.Errorf("%s does not receive %s", svc, e.name)
				}
			}

			if !strings.HasPrefix(c.Image, "gamify/boost") {
				t.Errorf("image = %q, want the gamify/boost image", c.Image)
			}
			if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
				t.Error("pod securityContext.runAsNonRoot is not true")
			}
			if pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser == 0 {
				// USER nonroot is a name; the kubelet needs a number to verify runAsNonRoot.
				t.Error("pod securityContext.runAsUser must be a non-zero uid")
			}
			if c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
				t.Error("container securityContext.readOnlyRootFilesystem is not true")
			}
			for _, r := range []string{"cpu", "memory"} {
				if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
					t.Errorf("missing %s request/limit", r)
				}
			}

			if o.Kind == "Job" {
				return
			}
			if o.Kind != "Deployment" {
				t.Fatalf("kind = %s, want Deployment", o.Kind)
			}
			if o.Spec.Replicas == nil {
				t.Errorf("replicas not set, want %d", wantReplicas[svc])
			} else if *o.Spec.Replicas != wantReplicas[svc] {
				t.Errorf("replicas = %d, want %d", *o.Spec.Replicas, wantReplicas[svc])
			}
			checkProbe(t, c, "liveness", c.LivenessProbe, "/healthz")
			checkProbe(t, c, "readiness", c.ReadinessProbe, "/readyz")
		})
	}

	if b, ok := workloads["bridge"]; ok && b.Spec.Strategy.Type != "Recreate" {
		t.Errorf("bridge strategy = %q, want Recreate (never two bridges at once)", b.Spec.Strategy.Type)
	}
	if _, ok := all["Service/boost-api"]; !ok {
		t.Error("no Service boost-api")
	}
	if _, ok := all["PodDisruptionBudget/boost-api"]; !ok {
		t.Error("no PodDisruptionBudget boost-api")
	}
}

func checkProbe(t *testing.T, c container, kind string, p *probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("no %s httpGet probe", kind)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("%s probe path = %q, want %q", kind, p.HTTPGet.Path, path)
	}
	port := -1
	switch v := p.HTTPGet.Port.(type) {
	case int:
		port = v
	case string:
		for _, cp := range c.Ports {
			if cp.Name == v {
				port = cp.ContainerPort
			}
		}
	}
	if port != 3000 {
		t.Errorf("%s probe port %v does not resolve to 3000", kind, p.HTTPGet.Port)
	}
}

// TestK8sConfigCoversEnv checks that every variable is provided by the
// ConfigMap or the example Secret, and that secrets stay out of the ConfigMap.
func TestK8sConfigCoversEnv(t *testing.T) {
	_, all := k8sWorkloads(t)
	cm := all["ConfigMap/boost-config"].Data
	sec := all["Secret/boost-secrets"].StringData
	secret := []string{"DATABASE_URL", "REDIS_URL", "BOOST_ADMIN_TOKEN"}
	for _, e := range envTable {
		_, inCM := cm[e.name]
		_, inSecret := sec[e.name]
		switch {
		case slices.Contains(secret, e.name) && !inSecret:
			t.Errorf("%s missing from secret.example.yaml", e.name)
		case slices.Contains(secret, e.name) && inCM:
			t.Errorf("%s is secret and must not be in configmap.yaml", e.name)
		case !slices.Contains(secret, e.name) && !inCM:
			t.Errorf("%s missing from configmap.yaml", e.name)
		}
	}
}
