"""Device keys move here from accounts, where their foreign keys point (platforms and sensors); no key is lost.

The model was `accounts.DeviceKey` (table `accounts_devicekey`, made by accounts 0004). This migration takes it
over in Django's state only, then renames the table and its check constraint after this app and moves its content
type (and so the permissions and admin history attached to it) to `sensors`. Accounts 0005 then drops the model
from accounts' state only. Backwards, the same steps are undone in reverse order: the table gets its old name back.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def one_target(name):
    return models.CheckConstraint(
        condition=models.Q(models.Q(("platform__isnull", False), ("sensor__isnull", True)), models.Q(("platform__isnull", True), ("sensor__isnull", False)), _connector="OR"),
        name=name,
        violation_error_message="A device key is bound to exactly one platform or one sensor.",
    )


def content_type_move(old_app, new_app):
    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        content_types = ContentType.objects.using(schema_editor.connection.alias)
        # A database that never had the old one (a new one: content types are made after migrating) has none to move.
        if not content_types.filter(app_label=new_app, model="devicekey").exists():
            content_types.filter(app_label=old_app, model="devicekey").update(app_label=new_app)

    return move


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0004_devicekey"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("sensors", "0003_schedule_fetch_sources"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="DeviceKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=200)),
                        ("prefix", models.CharField(editable=False, help_text="The key's first characters.", max_length=8)),
                        ("digest", models.CharField(editable=False, max_length=64, unique=True)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                        ("revoked_at", models.DateTimeField(blank=True, editable=False, null=True)),
                        ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True)),
                        ("created_by", models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                        ("platform", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="device_keys", to="sensors.platform")),
                        ("sensor", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="device_keys", to="sensors.sensor")),
                    ],
                    options={
                        "db_table": "accounts_devicekey",
                        "ordering": ["-created_at"],
                        "constraints": [one_target("accounts_devicekey_one_target")],
                    },
                ),
            ],
        ),
        migrations.AlterModelTable(name="devicekey", table=None),  # accounts_devicekey -> sensors_devicekey
        migrations.RemoveConstraint(model_name="devicekey", name="accounts_devicekey_one_target"),
        migrations.AddConstraint(model_name="devicekey", constraint=one_target("sensors_devicekey_one_target")),
        migrations.RunPython(content_type_move("accounts", "sensors"), content_type_move("sensors", "accounts")),
    ]
