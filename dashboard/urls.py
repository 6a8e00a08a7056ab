from django.urls import path

from dashboard.views.events import events_page
from dashboard.views.overview import overview_page

app_name = "dashboard"

# Each page adds its path here; other pages: sensors/<key>/ (`sensor`), anomalies/, jobs/, data/, import/.
urlpatterns = [
    path("", overview_page, name="overview"),
    path("events/", events_page, name="events"),
]
