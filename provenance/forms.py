"""Forms for the provenance pages. They parse and shape input; services decide the rules."""

from django import forms


class AuditFilterForm(forms.Form):
    action = forms.CharField(max_length=64, required=False)
    object_type = forms.CharField(max_length=64, required=False, label="Object type")
    object_id = forms.CharField(max_length=64, required=False, label="Object id")
    actor_pseudonym = forms.CharField(max_length=32, required=False, label="Actor pseudonym")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
