# "Source" means one thing only: an HTTP endpoint fetched on a schedule (HttpSource). Where a message arrived from
# is its transport. Stored values are unchanged (a rejected message of an HTTP source keeps "external").

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sensors', '0004_devicekey'),
    ]

    operations = [
        migrations.RenameModel(old_name='SensorSource', new_name='HttpSource'),
        migrations.AlterModelOptions(
            name='httpsource',
            options={'ordering': ['sensor__key'], 'verbose_name': 'HTTP source'},
        ),
        migrations.RenameField(model_name='rejectedmessage', old_name='source', new_name='transport'),
        migrations.AlterField(
            model_name='rejectedmessage',
            name='transport',
            field=models.CharField(choices=[('pubsub', 'Redis pub/sub'), ('stream', 'Redis stream'), ('mqtt', 'MQTT'), ('rest', 'REST API'), ('csv', 'CSV import'), ('external', 'HTTP source'), ('simulator', 'Simulator'), ('admin', 'Admin re-process')], max_length=20),
        ),
    ]
