/* File inputs with data-max-bytes refuse a larger file before it is sent (the server would answer 413 to the whole
   request, outside the page): the form's own validation message says the limit. */
(function () {
  "use strict";
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach(function (input) {
    input.addEventListener("change", function () {
      var limit = Number(input.dataset.maxBytes);
      var file = input.files && input.files[0];
      var tooBig = file && file.size > limit;
      input.setCustomValidity(tooBig ? "The file is " + file.size.toLocaleString() + " bytes; the limit is " +
        limit.toLocaleString() + " bytes." : "");
      if (tooBig) input.reportValidity();
    });
  });
})();
