"""Device keys now belong to sensors (sensors 0004 took the model and its table over): drop the model from accounts'
state only, never the table."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0004_devicekey"),
        ("sensors", "0004_devicekey"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="DeviceKey")]),
    ]
