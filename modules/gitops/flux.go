package gitops

import (
	"bytes"
	"fmt"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// AnySemver makes Flux follow the highest version tag, pre-releases
// included, as K2s's native deploy source does; which versions a cluster
// receives is decided by what is pushed, not by the cluster.
const AnySemver = ">=0.0.0-0"

// Flux returns a multi-document YAML stream with the OCIRepository and the
// Kustomization that make Flux run the addon's sync Job whenever a new
// version appears in the registry.
func Flux(a Addon) ([]byte, error) {
	a, err := a.resolved()
	if err != nil {
		return nil, err
	}
	if a.Registry == "" {
		return nil, fmt.Errorf("gitops: Addon.Registry is empty; Flux needs the registry the cluster pulls from")
	}
	name := a.objectName()

	repo := &sourcev1.OCIRepository{
		TypeMeta:   metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.OCIRepositoryKind},
		ObjectMeta: fluxMeta(a, "source"),
		Spec: sourcev1.OCIRepositorySpec{
			URL:       "oci://" + a.Registry + "/" + a.Repository,
			Reference: &sourcev1.OCIRepositoryRef{SemVer: AnySemver},
			LayerSelector: &sourcev1.OCILayerSelector{
				MediaType: ManifestsMediaType,
				Operation: sourcev1.OCILayerExtract,
			},
			Interval: metav1.Duration{Duration: a.Interval},
			Insecure: a.Insecure,
		},
	}
	ks := &kustomizev1.Kustomization{
		TypeMeta:   metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
		ObjectMeta: fluxMeta(a, "kustomization"),
		Spec: kustomizev1.KustomizationSpec{
			Interval:  metav1.Duration{Duration: a.Interval},
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: sourcev1.OCIRepositoryKind, Name: name},
			Path:      "./" + SyncDir,
			// prune removes a sync Job dropped from a later version; force
			// replaces the Job, whose pod template is immutable, when the
			// version changes; wait holds the Kustomization not-ready until
			// the Job has finished.
			Prune:           true,
			Force:           true,
			Wait:            true,
			Timeout:         &metav1.Duration{Duration: a.Timeout},
			TargetNamespace: a.TargetNamespace,
		},
	}

	var out bytes.Buffer
	for _, obj := range []runtime.Object{repo, ks} {
		doc, err := marshalClean(obj)
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		out.Write(doc)
	}
	return out.Bytes(), nil
}

func fluxMeta(a Addon, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      a.objectName(),
		Namespace: a.Namespace,
		Labels: map[string]string{
			"app.kubernetes.io/name":      "addon-sync",
			"app.kubernetes.io/component": component,
			"app.kubernetes.io/part-of":   "k2s",
			"k2s.io/addon":                a.ExportName(),
		},
	}
}

// marshalClean marshals a typed object without the empty status and the
// null creationTimestamp that the typed structs cannot omit. Going through
// the unstructured map keeps the result exactly what the types produce
// otherwise; sigs.k8s.io/yaml sorts map keys, which makes it deterministic.
func marshalClean(obj runtime.Object) ([]byte, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("gitops: convert %T: %w", obj, err)
	}
	delete(m, "status")
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	b, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("gitops: marshal %T: %w", obj, err)
	}
	return b, nil
}
