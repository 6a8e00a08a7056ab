"""The roles as groups: viewer (read) and operator (read and operate).

Later apps add their model permissions to these groups in their own data migrations.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLES = {
    "viewer": ["access_data"],
    "operator": ["access_data", "operate"],
}


def create_roles(apps, schema_editor):
    # Permissions are normally made after all migrations (post_migrate); make this app's now.
    app_config = apps.get_app_config("accounts")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames)
        )


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
